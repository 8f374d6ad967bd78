// The queue engine's side of the cold backlog (cold-backlog.ts, issue #3):
// when a new message stays on disk, and reading cold messages back, either
// as copies that stay cold (listing, compaction) or for good (page-in).
// Reading is the broker's PageIn; the engine keeps the counts.

import { ColdBacklog, type ColdEntry } from './cold-backlog.js';
import type { Message } from './types.js';

/** Reads messages back from the log by seq; undefined for one that cannot be. */
export type PageIn = (seqs: number[]) => (Message | undefined)[];

/** Ready messages kept in memory before new ones stay on disk only. */
export const HOT_READY_LIMIT = 4096;
/** The same for their bodies: with 16 MiB bodies, 4096 of them would be 64 GiB. */
export const HOT_WAITING_BYTES = 16 * 1024 * 1024;
/** Messages read back from disk at a time. */
export const PAGE_IN_BATCH = 256;
/** Bodies read back at a time, at most (one message at least). */
const PAGE_IN_BYTES = 4 * 1024 * 1024;

export class ColdTier {
  readonly backlog = new ColdBacklog();
  /** Cold messages that could not be read back; they return at restart. */
  unreadable = 0;
  #oldestSeen = { seq: -1, publishedAt: 0 };

  constructor(
    private readonly read: PageIn,
    private readonly hotReadyLimit = HOT_READY_LIMIT,
    private readonly hotWaitingBytes = HOT_WAITING_BYTES,
  ) {}

  /**
   * Whether a new publish stays on disk: it is ready, it may join behind
   * the cold messages of its priority, and either some wait there already
   * (order within a priority) or the hot window is full.
   */
  keeps(
    message: Pick<Message, 'availableAt' | 'priority' | 'seq'>,
    now: number,
    hotReady: number,
    hotWaitingBytes: number,
  ): boolean {
    const backlog = this.backlog;
    return message.availableAt <= now &&
      backlog.accepts(message.priority, message.seq) &&
      (backlog.countOf(message.priority) > 0 ||
        hotReady >= this.hotReadyLimit ||
        hotWaitingBytes >= this.hotWaitingBytes);
  }

  /**
   * Takes a page of the oldest cold messages of `priority` out of the
   * backlog and reads them back. `sizes` has every entry taken, read or
   * not; one that cannot be read is counted in `unreadable` and left out
   * of `messages` (its log record stays, so it returns at restart).
   */
  takePage(priority: number, max = PAGE_IN_BATCH): { messages: Message[]; sizes: number[] } {
    const { seqs, sizes } = this.backlog.take(priority, max, PAGE_IN_BYTES);
    return { messages: this.#readOrCount(seqs), sizes };
  }

  /** Takes `seq` out of the backlog; what it was and the message read back. */
  takeOne(seq: number): { entry: ColdEntry; message: Message | undefined } | undefined {
    const entry = this.backlog.remove(seq);
    if (entry === undefined) return undefined;
    return { entry, message: this.#readOrCount([seq])[0] };
  }

  /** A cold message read back as a copy that stays cold. */
  find(seq: number): Message | undefined {
    return this.backlog.has(seq) ? this.copies([seq])[0] : undefined;
  }

  /** Cold messages read back as copies; unreadable ones are left out. */
  copies(seqs: number[]): Message[] {
    if (seqs.length === 0) return [];
    return this.read(seqs).filter((message): message is Message => message !== undefined);
  }

  /** Every cold message in seq order, read back a page at a time. */
  *values(): Generator<Message> {
    const seqs = this.backlog.seqs();
    for (let at = 0; at < seqs.length; at += PAGE_IN_BATCH) {
      yield* this.copies(seqs.slice(at, at + PAGE_IN_BATCH));
    }
  }

  /** `limit` cold messages from `offset` in seq order, reading only those. */
  list(offset: number, limit: number): Message[] {
    return this.copies(this.backlog.slice(offset, limit).map((entry) => entry.seq));
  }

  /** The oldest cold message's seq and publish time; one read per new oldest. */
  oldest(now: number): { seq: number; publishedAt: number } | undefined {
    const oldest = this.backlog.oldest();
    if (oldest === undefined) return undefined;
    if (this.#oldestSeen.seq !== oldest.seq) {
      const [message] = this.copies([oldest.seq]);
      this.#oldestSeen = { seq: oldest.seq, publishedAt: message?.publishedAt ?? now };
    }
    return this.#oldestSeen;
  }

  #readOrCount(seqs: number[]): Message[] {
    if (seqs.length === 0) return [];
    const messages: Message[] = [];
    for (const message of this.read(seqs)) {
      if (message === undefined) this.unreadable++;
      else messages.push(message);
    }
    return messages;
  }
}
