// Purging a queue (purgeWaiting), and what a purge took out of it,
// kept until its `settled` records are durable: should that write fail,
// the queue takes it all back (restorePurged) rather than lose it until a
// restart brings it back from the log (broker/queues.ts). Cold messages
// are kept as rows of a ColdRows table, about 29 bytes each, not as
// objects: a purge may take millions.

import type { ColdDeque } from './cold-backlog.js';
import { ColdRows, type ColdRow } from './cold-rows.js';
import type { ColdLeft, ColdTier, ColdEntry } from './cold-tier.js';
import type { FifoGroups } from './fifo-groups.js';
import type { Message } from './types.js';

/** What a purge reads and changes of a queue (QueueContents.purge). */
export interface PurgedQueue {
  fifo: boolean;
  messages: ReadonlyMap<number, Message>;
  groups: FifoGroups;
  cold: ColdTier | null;
  dequeOf: (group: number) => ColdDeque | undefined;
  /** Counts a message that left the cold tier as gone. */
  forgetCold: (left: ColdLeft) => void;
  /** Takes a message in memory out of the queue. */
  detach: (message: Message) => void;
}

/** What restoring a purge adds to a queue (QueueContents). */
export interface RestoredQueue {
  enqueue(message: Message, now: number, onDisk?: boolean): void;
  enqueueColdEntry(fields: Omit<ColdEntry, 'order'>, group: string | null, now: number): boolean;
}

/**
 * Removes every message not in flight; what it took, which
 * restorePurged() puts back should its `settled` records fail.
 */
export function purgeWaiting(queue: PurgedQueue): Purged {
  const purged = new Purged();
  const cold = queue.cold;
  if (cold !== null) {
    const dequeOf = queue.fifo ? queue.dequeOf : undefined;
    for (const seq of cold.seqs(queue.fifo)) {
      const row = cold.rows.get(seq);
      const left = cold.remove(seq, dequeOf);
      if (left === undefined) continue;
      queue.forgetCold(left);
      if (row === undefined) purged.addCold(plainRow(seq, left), null);
      else purged.addCold(row, queue.groups.byId(row.group)?.key ?? null);
    }
    // Removed entries are only marked dead: let go of their arrays.
    cold.backlog.clear();
    for (const group of queue.groups.values()) group.cold.clear();
  }
  for (const message of queue.messages.values()) {
    if (message.state === 'in-flight') continue;
    purged.addHot(message);
    queue.detach(message);
  }
  return purged;
}

/**
 * Puts back what purge() took, its `settled` records having failed to
 * reach the log: cold ones as cold entries, in their places by seq
 * among any that came since; hot ones as copies, since a heap may still
 * name the old objects.
 *
 * Publishes admitted while the purge was written (the queue looked
 * empty) may have filled it to maxLength or maxBytes. Under drop-oldest
 * the messages put back are the oldest, and each is displaced as it
 * comes back (enqueue trims: dead-lettered or dropped, reason overflow,
 * its records written after), so the limit holds as for any arrival.
 * Under reject-publish(-dlx) and reject-lowest-priority they stay, over
 * the limit: they were accepted before the newcomers, and losing them to
 * a failed write is worse than a queue over its limit for a while. The
 * limits count them (planAdmission), so publishes are refused, or under
 * reject-lowest-priority displace as many as it takes, until the queue
 * is back under. Checked, counts and all, hot and cold, by
 * test/broker/purge-restore-limits.test.ts.
 */
export function restorePurged(queue: RestoredQueue, purged: Purged, now: number): void {
  // Cold rows come only from a queue that keeps messages cold, and its
  // durability, which decides that, never changes: none is refused.
  for (const { row, group } of purged.cold()) queue.enqueueColdEntry(row, group, now);
  // A message whose state the log held before the purge holds it still,
  // the purge's records having failed: it may go cold like any other.
  // Put back as not on disk, it stayed in memory past a full window and
  // a spent budget, for good (breaker, 2026-12-06).
  for (const message of purged.hot) {
    queue.enqueue({ ...message }, now, message.loggedHeaders === message.headers);
  }
}

export class Purged {
  /** Seqs of every message taken: what the `settled` records name. */
  readonly seqs: number[] = [];
  /** Those that were in memory, as they were. */
  readonly hot: Message[] = [];
  readonly #cold = new ColdRows();
  /** FIFO group keys by group id: a group may be forgotten before a restore. */
  readonly #groups = new Map<number, string>();

  addHot(message: Message): void {
    this.seqs.push(message.seq);
    this.hot.push(message);
  }

  /** A cold message's row; `group` is its FIFO group's key, null in a best-effort queue. */
  addCold(row: ColdRow, group: string | null): void {
    this.seqs.push(row.seq);
    this.#cold.put(row);
    if (group !== null) this.#groups.set(row.group, group);
  }

  /** The cold ones in seq order, each with its FIFO group's key (or null). */
  *cold(): Generator<{ row: ColdRow; group: string | null }> {
    for (const seq of this.#cold.seqs()) {
      const row = this.#cold.get(seq) as ColdRow;
      yield { row, group: this.#groups.get(row.group) ?? null };
    }
  }
}

/** A cold message without a row: a plain ready one, never retried. */
function plainRow(seq: number, { priority, bytes }: ColdLeft): ColdRow {
  return {
    seq, priority, bytes, failures: 0, group: 0, availableAt: 0, delayed: false, order: 0,
    orderOnly: false,
  };
}
