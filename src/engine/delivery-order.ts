// A queue's messages in the order a consumer would get them, the same
// wherever they are, in memory or cold (read back as copies that stay
// cold): for a peek at the queue and for a redrive that moves only some
// (QueueContents.list, waitingInOrder). Reads the queue, changes nothing.

import { type ColdTier, PAGE_IN_BATCH } from './cold-tier.js';
import type { ReadyMessages } from './ready-messages.js';
import type { TimedEntries } from './timed-entries.js';
import { MAX_PRIORITY, type Message } from './types.js';

/** What listing reads of a queue (QueueContents), taken when it starts. */
export interface ListedQueue {
  fifo: boolean;
  messages: ReadonlyMap<number, Message>;
  ready: ReadyMessages;
  delayed: TimedEntries;
  leaseDeadlines: TimedEntries;
  inFlight: number;
  cold: ColdTier | null;
}

/**
 * Waiting messages in the order a consumer would get them, the same
 * wherever they are (cold ones read back as copies a page at a time): for
 * a redrive that moves only some. A best-effort queue's ready messages by
 * priority, highest first, then seq; then its delayed ones by due time,
 * then seq. A FIFO queue's by seq, which keeps each group's order. The
 * caller releases due delays first (QueueEngine.inDeliveryOrder), and
 * may take each message out as it gets it (waitingEntries).
 */
export function* waitingInOrder(queue: ListedQueue): Generator<Message> {
  const entries = waitingEntries(queue, Number.POSITIVE_INFINITY);
  for (;;) {
    const page: (Message | number)[] = [];
    for (let next = entries.next(); !next.done; next = entries.next()) {
      if (page.push(next.value) === PAGE_IN_BATCH) break;
    }
    if (page.length === 0) return;
    yield* readPage(queue.cold, page);
  }
}

/**
 * `limit` messages from `offset` in the order they would be delivered,
 * reading back only the cold ones listed: the waiting ones as
 * waitingInOrder gives them (a delayed one whose time has come but
 * that no tick has made ready yet among the delayed), then those in
 * flight, by seq.
 */
export function listInOrder(queue: ListedQueue, offset: number, limit: number): Message[] {
  const page: (Message | number)[] = [];
  let passed = 0;
  for (const entry of waitingEntries(queue, offset + limit)) {
    if (page.length === limit) break;
    if (passed++ >= offset) page.push(entry);
  }
  if (page.length < limit && queue.inFlight > 0) {
    const inFlight = queue.leaseDeadlines.first(queue.inFlight)
      .map((lease) => lease.message)
      .sort((a, b) => a.seq - b.seq);
    const from = Math.max(0, offset - passed);
    page.push(...inFlight.slice(from, from + limit - page.length));
  }
  return readPage(queue.cold, page);
}

/**
 * The first `want` waiting messages in delivery order (waitingInOrder):
 * a message in memory as it is, a cold one as its seq, none read back.
 * Each run of them (a priority's ready ones, the delayed ones) is copied
 * out before its first is handed over, so the caller may take those
 * handed over out of the queue as it goes. Costs `want` and the
 * messages out of order in memory (sorted-items.ts), but for a FIFO
 * queue's and the delayed cold ones, which are all copied (a number
 * each) and sorted.
 */
function* waitingEntries(queue: ListedQueue, want: number): Generator<Message | number> {
  const cold = queue.cold;
  const bySeq = (seqs: number[]) => (message: Message, at: number) => message.seq < seqs[at];
  if (queue.fifo) {
    const hot = [...queue.messages.values()]
      .filter((message) => message.state !== 'in-flight')
      .sort((a, b) => a.seq - b.seq);
    const seqs = cold?.rows.seqs() ?? [];
    yield* merged(hot, seqs, bySeq(seqs));
    return;
  }

  let left = want;
  for (let priority = MAX_PRIORITY; priority >= 0 && left > 0; priority--) {
    const seqs = cold?.backlog.peekPage(priority, left) ?? [];
    for (const entry of merged(queue.ready.first(priority, left), seqs, bySeq(seqs))) {
      yield entry;
      if (--left === 0) return;
    }
  }

  if (left <= 0) return;
  const delayed = queue.delayed.first(left).map((entry) => entry.message);
  const { seqs, dues } = cold?.delayedByDue() ?? { seqs: [], dues: [] };
  yield* merged(delayed, seqs, (message, at) =>
    message.availableAt < dues[at] ||
    (message.availableAt === dues[at] && message.seq < seqs[at]));
}

/** `page` with its cold seqs read back (at once); unreadable ones are left out. */
function readPage(cold: ColdTier | null, page: (Message | number)[]): Message[] {
  const wanted = page.filter((entry): entry is number => typeof entry === 'number');
  if (wanted.length === 0) return page as Message[];
  const read = new Map<number, Message>();
  for (const message of cold?.copies(wanted) ?? []) read.set(message.seq, message);
  const messages: Message[] = [];
  for (const entry of page) {
    const message = typeof entry === 'number' ? read.get(entry) : entry;
    if (message !== undefined) messages.push(message);
  }
  return messages;
}

/**
 * Messages in memory and cold seqs, each list in order, as one sequence:
 * `hotFirst` says whether a message comes before the cold seq at `at`.
 */
function* merged(
  hot: Message[],
  coldSeqs: number[],
  hotFirst: (message: Message, at: number) => boolean,
): Generator<Message | number> {
  let hotAt = 0;
  let coldAt = 0;
  while (hotAt < hot.length || coldAt < coldSeqs.length) {
    const takeHot = hotAt < hot.length &&
      (coldAt === coldSeqs.length || hotFirst(hot[hotAt], coldAt));
    yield takeHot ? hot[hotAt++] : coldSeqs[coldAt++];
  }
}
