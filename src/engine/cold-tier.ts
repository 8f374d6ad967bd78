// The queue engine's side of the cold tier (issue #3): which waiting
// messages stay on disk, and reading them back, either as copies that
// stay cold (listing, compaction) or for good (page-in). Reading is the
// broker's PageIn; the engine keeps the counts.
//
// A cold message is known by its seq and body size in a deque
// (cold-backlog.ts): by priority for a best-effort queue's ready messages,
// by group for a FIFO queue's (fifo-groups.ts). What scheduling needs
// beyond that (due time, attempts, group, delayed or not) is a row in
// ColdRows (cold-rows.ts); a plain new publish needs none. Everything else
// (body, id, headers, publish time, expiry) is the message's latest
// `published` record, read back by seq. So a message may go cold only
// once that record is its state but for the row's fields: a new publish
// once durable, a moved or retried one once the record of the move has
// landed (QueueEngine.landed).

import { ColdBacklog, type ColdDeque } from './cold-backlog.js';
import { ColdRows, type ColdRow } from './cold-rows.js';
import { HotMemory } from './hot-memory.js';
import { MAX_PRIORITY, type Message } from './types.js';

/** Reads messages back from the log by seq; undefined for one that cannot be. */
export type PageIn = (seqs: number[]) => (Message | undefined)[];
/**
 * Starts reading messages back off the event loop, for a PageIn of the
 * same seqs soon; it changes nothing a PageIn returns, only how fast.
 */
export type ReadAhead = (seqs: number[]) => void;

/**
 * Waiting messages a queue keeps in memory before new ones stay on disk
 * only, unless the broker's budget (hot-memory.ts) has room for more.
 */
export const HOT_READY_LIMIT = 4096;
/** The same for their bodies: with 16 MiB bodies, 4096 of them would be 64 GiB. */
export const HOT_WAITING_BYTES = 16 * 1024 * 1024;
/** Messages read back from disk at a time. */
export const PAGE_IN_BATCH = 256;
/**
 * Bodies read back at a time, at most (one message at least).
 * TODO(#4): a body read back lives from its page-in to its ack (with
 * 16 KiB bodies a page and a prefetch of 500 are ~12 MB), across young
 * collections, and dies old: draining a cold backlog still runs a full
 * collection every ~4,000 messages (10-15 in 50,000, bench:amqp
 * --only durable), where the publish side now runs 2-11. Most of them
 * start on external memory pressure (--trace-incremental-marking: 10 of
 * 16), and V8's marking steps then run inside the next allocations, so
 * allocating a body showed as ~10% of the consume's CPU beside ~10% in
 * the collector. Bodies as views of the read-ahead chunks, left to the
 * collector instead of copied out, saved the copy and the allocations
 * but not the CPU (one profiled run, 43 µs/msg): 1 MiB chunks are the
 * same external bytes.
 */
const PAGE_IN_BYTES = 4 * 1024 * 1024;
/**
 * Pages read ahead of the one taken. With one, a page-in found a third
 * of its frames still being read (16 KiB bodies, 2 loaded cores): the
 * read of the next page had only this page's delivery to finish in.
 */
const READ_AHEAD_PAGES = 2;

const AHEAD_COUNT = READ_AHEAD_PAGES * PAGE_IN_BATCH;
const AHEAD_BYTES = READ_AHEAD_PAGES * PAGE_IN_BYTES;

/** What left the cold tier, for the engine's counts. */
export interface ColdLeft {
  priority: number;
  bytes: number;
  delayed: boolean;
}

/** What the cold tier keeps of a message: a row's fields but its group and flags. */
export type ColdEntry = Omit<ColdRow, 'group' | 'delayed' | 'orderOnly'>;

/** What deciding whether a message goes cold reads of it. */
export type ColdCandidate = Pick<Message, 'seq' | 'priority' | 'group' | 'failures'>;

export class ColdTier {
  /** A best-effort queue's ready cold messages, by priority. */
  readonly backlog = new ColdBacklog();
  readonly rows: ColdRows;
  /** Cold messages, ready or delayed, and their body bytes. */
  count = 0;
  bytes = 0;
  /** Cold messages that could not be read back; they return at restart. */
  unreadable = 0;
  #oldestSeen = { seq: -1, publishedAt: 0 };
  /** By priority, the highest backlog seq read ahead so far (#notAskedYet). */
  readonly #askedUntil = new Array<number>(MAX_PRIORITY + 1).fill(-1);

  /**
   * `ordered`: a reject-lowest-priority queue's, whose rows keep wait
   * numbers. `readAhead` is told the page that comes next each time one
   * is taken, so that it is in memory when taken in turn. `hot` is the
   * broker's budget, which lets the window hold more than
   * `hotWaitingLimit` messages or `hotWaitingBytes` while it has room.
   */
  constructor(
    private readonly read: PageIn,
    private readonly hotWaitingLimit = HOT_READY_LIMIT,
    private readonly hotWaitingBytes = HOT_WAITING_BYTES,
    ordered = false,
    private readonly readAhead: ReadAhead = () => {},
    private readonly hot = new HotMemory(0),
  ) {
    this.rows = new ColdRows(ordered);
  }

  /**
   * Whether the in-memory window is full: past its count or its bytes,
   * and the broker's budget spent. The bytes bounded the window whatever
   * the budget held until 2026-12-06: a backlog of 50,000 464-byte AMQP
   * messages (58 MB charged, under the 64 MiB budget) kept 36,000 in
   * memory and read 13,800 back, and consuming it cost the broker 8.0-10.4
   * µs a message against 4.0-5.6 with all of it in memory (bench:amqp
   * --usher-only, three interleaved pairs; 16 KiB bodies level within the
   * spread). Memory stays bounded by the budget past the windows.
   */
  full(hotWaiting: number, hotWaitingBytes: number): boolean {
    const windowFull =
      hotWaiting >= this.hotWaitingLimit || hotWaitingBytes >= this.hotWaitingBytes;
    return windowFull && this.hot.spent;
  }

  /**
   * Whether a plain ready message of a best-effort queue stays on disk: it
   * may join behind the cold messages of its priority, and
   * either some wait there already (order within a priority) or the
   * window is full.
   */
  keepsPlain(message: ColdCandidate, hotWaiting: number, hotBytes: number): boolean {
    const backlog = this.backlog;
    return message.failures === 0 &&
      backlog.accepts(message.priority, message.seq) &&
      (backlog.countOf(message.priority) > 0 || this.full(hotWaiting, hotBytes));
  }

  /**
   * Adds a message: to `deque` (its FIFO group's, with `group` its id) or
   * to the best-effort backlog. Only what the row needs is kept.
   */
  add(
    message: Pick<Message, 'seq' | 'priority' | 'body' | 'failures' | 'availableAt'>,
    delayed: boolean,
    deque?: ColdDeque,
    group = 0,
    order = 0,
  ): void {
    this.addEntry({
      seq: message.seq,
      priority: message.priority,
      bytes: message.body.length,
      failures: message.failures,
      availableAt: message.availableAt,
      order,
    }, delayed, deque, group);
  }

  /** add() for a message known by its scheduling fields alone (a restart). */
  addEntry(entry: ColdEntry, delayed: boolean, deque?: ColdDeque, group = 0): void {
    const { seq, priority, bytes } = entry;
    const plain = deque === undefined && !delayed && entry.failures === 0;
    if (!plain || entry.order !== 0) {
      this.rows.put({
        seq,
        priority,
        bytes,
        failures: entry.failures,
        group,
        availableAt: entry.availableAt,
        delayed,
        order: entry.order,
        orderOnly: plain,
      });
    }
    if (deque !== undefined) deque.insert(seq, bytes);
    else if (!delayed) this.backlog.insert(priority, seq, bytes);
    this.count++;
    this.bytes += bytes;
  }

  /**
   * Adds a replayed plain message without its body; false if it may not.
   * `order`: its wait number in a reject-lowest-priority queue, else 0.
   */
  addPlain(priority: number, seq: number, bytes: number, order = 0): boolean {
    if (!this.backlog.accepts(priority, seq)) return false;
    this.backlog.push(priority, seq, bytes);
    if (order !== 0) {
      this.rows.put({
        seq, priority, bytes, failures: 0, group: 0, availableAt: 0, delayed: false, order,
        orderOnly: true,
      });
    }
    this.count++;
    this.bytes += bytes;
    return true;
  }

  /** Delayed rows due by `now`, now ready; best-effort ones join the backlog. */
  releaseDue(now: number, fifo: boolean): ColdRow[] {
    // This runs at every receive: nothing allocated when nothing is due.
    const next = this.rows.nextDue();
    if (next === null || next > now) return NONE_DUE;
    const due = this.rows.due(now);
    if (!fifo) for (const row of due) this.backlog.insert(row.priority, row.seq, row.bytes);
    return due;
  }

  /**
   * Takes `seq` out; what it was, or undefined when it is not cold.
   * `dequeOf` finds a FIFO group's deque by group id.
   */
  remove(seq: number, dequeOf?: (group: number) => ColdDeque | undefined): ColdLeft | undefined {
    const row = this.rows.remove(seq);
    let left: ColdLeft | undefined;
    if (row !== undefined) {
      if (dequeOf !== undefined) dequeOf(row.group)?.remove(seq);
      else if (!row.delayed) this.backlog.remove(seq);
      left = { priority: row.priority, bytes: row.bytes, delayed: row.delayed };
    } else if (dequeOf === undefined) {
      const entry = this.backlog.remove(seq);
      if (entry !== undefined) {
        left = { priority: entry.priority, bytes: entry.bytes, delayed: false };
      }
    }
    if (left === undefined) return undefined;
    this.count--;
    this.bytes -= left.bytes;
    return left;
  }

  has(seq: number): boolean {
    return this.rows.has(seq) || this.backlog.has(seq);
  }

  /**
   * Takes a page of the oldest cold messages of `priority` out of the
   * best-effort backlog and reads them back (ready). `left` has every
   * entry taken, read or not; one that cannot be read is counted in
   * `unreadable` and left out of `messages` (its log record stays, so it
   * returns at restart).
   */
  takePage(
    priority: number,
    max = PAGE_IN_BATCH,
    readAhead = true,
  ): { messages: Message[]; left: ColdLeft[] } {
    const { seqs, sizes } = this.backlog.take(priority, max, PAGE_IN_BYTES);
    const left: ColdLeft[] = sizes.map((bytes) => ({ priority, bytes, delayed: false }));
    // Retried ones have a row; new publishes have none (no lookup cost).
    const rows = new Map<number, ColdRow>();
    if (this.rows.count > 0) {
      for (const seq of seqs) {
        const row = this.rows.remove(seq);
        if (row !== undefined) rows.set(seq, row);
      }
    }
    this.count -= seqs.length;
    for (const bytes of sizes) this.bytes -= bytes;
    const messages = this.#readOrCount(seqs, true, rows);
    if (readAhead) {
      const ahead = this.backlog.peekPage(priority, AHEAD_COUNT, AHEAD_BYTES);
      this.#readNextAhead(this.#notAskedYet(priority, ahead));
    }
    return { messages, left };
  }

  /** The same from a FIFO group's deque; messages say if they are delayed. */
  takeGroupPage(deque: ColdDeque, max: number): { messages: Message[]; left: ColdLeft[] } {
    const seqs: number[] = [];
    const sizes: number[] = [];
    deque.shift(Math.min(max, PAGE_IN_BATCH), PAGE_IN_BYTES, seqs, sizes);
    const left: ColdLeft[] = [];
    const rows = new Map<number, ColdRow>();
    for (const seq of seqs) {
      const row = this.rows.remove(seq) as ColdRow;
      rows.set(seq, row);
      left.push({ priority: row.priority, bytes: row.bytes, delayed: row.delayed });
      this.count--;
      this.bytes -= row.bytes;
    }
    const messages = this.#readOrCount(seqs, false, rows);
    this.#readNextAhead(deque.peekPage(AHEAD_COUNT, AHEAD_BYTES));
    return { messages, left };
  }

  // The pages after one just taken: while this one is delivered, they
  // are read off the event loop (storage/frame-reader.ts; frames already
  // read or being read are skipped there). Only the first page of a
  // backlog, or one whose order changed meanwhile (a retry that went cold
  // ahead of it), is read in line.
  #readNextAhead(seqs: number[]): void {
    if (seqs.length > 0) this.readAhead(seqs);
  }

  // Of the pages after one taken from the backlog, the seqs not asked for
  // when an earlier page was taken: with two pages read ahead, every page
  // was asked for twice, and finding it read already cost a ledger lookup
  // and a map lookup a message. A retry that goes cold below the last
  // seq asked for is read in line when its turn comes, and so is a page
  // the reader found no room for (storage/read-ahead.ts: 16 chunks of
  // 1 MiB, a page of small bodies takes one, of 16 KiB bodies four),
  // where asking again a page later might have found some. TODO(#4):
  // that trade is not measured with several queues draining at once.
  #notAskedYet(priority: number, seqs: number[]): number[] {
    const until = this.#askedUntil[priority];
    let from = 0;
    while (from < seqs.length && seqs[from] <= until) from++;
    if (from < seqs.length) this.#askedUntil[priority] = seqs[seqs.length - 1];
    return from === 0 ? seqs : seqs.slice(from);
  }

  /** Takes `seq` out and reads it back; undefined if not cold. */
  takeOne(
    seq: number,
    dequeOf?: (group: number) => ColdDeque | undefined,
  ): { left: ColdLeft; message: Message | undefined } | undefined {
    const row = this.rows.get(seq);
    const left = this.remove(seq, dequeOf);
    if (left === undefined) return undefined;
    const rows = row === undefined ? undefined : new Map([[seq, row]]);
    return { left, message: this.#readOrCount([seq], false, rows)[0] };
  }

  /** A cold message read back as a copy that stays cold. */
  find(seq: number): Message | undefined {
    return this.has(seq) ? this.copies([seq])[0] : undefined;
  }

  /** Cold messages read back as copies, rows applied; unreadable ones left out. */
  copies(seqs: number[]): Message[] {
    if (seqs.length === 0) return [];
    const messages: Message[] = [];
    this.read(seqs).forEach((message, at) => {
      if (message === undefined) return;
      const row = this.rows.get(seqs[at]);
      if (row !== undefined) overlay(message, row);
      // Listed as it waits: a delayed one is not ready.
      if (row?.delayed === true) message.state = 'delayed';
      messages.push(message);
    });
    return messages;
  }

  /** Every cold seq, in seq order. */
  seqs(fifo: boolean): number[] {
    if (fifo) return this.rows.seqs();
    const seqs = this.backlog.seqs();
    if (this.rows.delayed === 0) return seqs;
    return seqs.concat(this.rows.seqs(true)).sort((a, b) => a - b);
  }

  /** Delayed cold messages by due time, then seq: their seqs and due times. */
  delayedByDue(): { seqs: number[]; dues: number[] } {
    const rows = this.rows.seqs(true).map((seq) => this.rows.get(seq) as ColdRow);
    rows.sort((a, b) => a.availableAt - b.availableAt || a.seq - b.seq);
    return { seqs: rows.map((row) => row.seq), dues: rows.map((row) => row.availableAt) };
  }

  /** Every cold message in seq order, read back a page at a time. */
  *values(fifo: boolean): Generator<Message> {
    const seqs = this.seqs(fifo);
    for (let at = 0; at < seqs.length; at += PAGE_IN_BATCH) {
      yield* this.copies(seqs.slice(at, at + PAGE_IN_BATCH));
    }
  }

  /** The lowest cold seq, waiting in any state. */
  oldestSeq(): number | undefined {
    const plain = this.backlog.oldest()?.seq;
    const row = this.rows.first();
    if (plain === undefined) return row;
    return row === undefined || plain < row ? plain : row;
  }

  /**
   * The oldest ready cold message's seq and publish time; one read per new
   * oldest. A FIFO queue's rows do not tell ready from delayed in order,
   * so there it is the oldest waiting one.
   */
  oldest(now: number, fifo: boolean): { seq: number; publishedAt: number } | undefined {
    const seq = fifo ? this.rows.first() : this.backlog.oldest()?.seq;
    if (seq === undefined) return undefined;
    if (this.#oldestSeen.seq !== seq) {
      const [message] = this.copies([seq]);
      this.#oldestSeen = { seq, publishedAt: message?.publishedAt ?? now };
    }
    return this.#oldestSeen;
  }

  // Reads `seqs` back, applying their rows (`rows` when already taken out),
  // and marks each ready or delayed as its row says (`ready` for all).
  #readOrCount(seqs: number[], ready: boolean, rows?: Map<number, ColdRow>): Message[] {
    if (seqs.length === 0) return [];
    const messages: Message[] = [];
    this.read(seqs).forEach((message, at) => {
      if (message === undefined) {
        this.unreadable++;
        return;
      }
      const row = rows?.get(seqs[at]);
      if (row !== undefined) overlay(message, row);
      message.state = !ready && row?.delayed === true ? 'delayed' : 'ready';
      // Read from its record, so its headers are on disk: a retry of it
      // needs no `published` copy to go cold again (QueueEngine.landed).
      message.loggedHeaders = message.headers;
      messages.push(message);
    });
    return messages;
  }
}

const NONE_DUE: ColdRow[] = [];

// A row's fields onto a message read back; its wait number goes in fresh
// slots, which the queue keeps when it takes the message in (enqueueHot).
function overlay(message: Message, row: ColdRow): void {
  if (!row.orderOnly) {
    message.failures = row.failures;
    message.availableAt = row.availableAt;
  }
  if (row.order !== 0) {
    message.slots = { heap: -1, delay: null, expiry: null, order: row.order, charge: 0 };
  }
}
