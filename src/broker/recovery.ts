// Rebuilds the broker's state from the log: the store replays records in
// order and this folds them into the queues and messages that were live
// when the log ended. Messages come back ready or delayed; leases are not
// logged, so whatever was in flight is delivered again (at-least-once).
//
// Replay keeps no bodies (issue #3): each live message is a row of a
// SeqTable (queue, priority, body size: about 21 bytes), and the broker
// puts most of them straight into their queues' cold backlogs, reading
// back from the log only the few that must be in memory (delayed, changed
// since published, or in a queue that keeps everything in memory).

import { DEDUP_MAX_IDS, MAX_DEDUP_IDS } from '../engine/dedup.js';
import { DEFAULT_SETTINGS } from '../engine/types.js';
import type { LogRecord, PublishedRecord } from '../storage/records.js';
import { type RowRef, SeqTable } from '../storage/seq-table.js';

/** A live message as the log last described it. */
export type ReplayedMessage = Omit<PublishedRecord, 'type'>;

/** What `retried` and `moved` records changed since the `published` one. */
export type ReplayedChange = Partial<
  Pick<ReplayedMessage, 'queue' | 'headers' | 'failures' | 'availableAt' | 'expiresAt'>
>;

export interface RecentId {
  queue: string;
  id: string;
  publishedAt: number;
}

/** One replayed live message, as the rebuild walks them in seq order. */
export interface ReplayedRow {
  seq: number;
  queue: string;
  priority: number;
  bodyBytes: number;
  /** Not deliverable yet when the log was replayed. */
  delayed: boolean;
  change: ReplayedChange | undefined;
}

// At most dedupMaxIds ids per queue (DEDUP_MAX_IDS by default) are kept for deduplication across a
// restart, the newest, as at run time (engine/dedup.ts). The log
// does not tell a producer's id from a generated one, and ten million
// remembered UUIDs would cost more than the backlog itself.

const QUEUE = 0;
const PRIORITY = 1;
const BODY_BYTES = 2;
const DELAYED_FLAG = 0x100;

export class ReplayState {
  /** Declared queues and their settings as logged. */
  readonly queues = new Map<string, Record<string, unknown>>();
  /** Ids published recently enough to matter, newest DEDUP_MAX_IDS a queue. */
  readonly #recent = new Map<string, RecentRing>();
  readonly #rows = new SeqTable(3);
  readonly #changes = new Map<number, ReplayedChange>();
  readonly #queueNames: string[] = [];
  readonly #queueIndex = new Map<string, number>();
  readonly #row = [0, 0, 0];
  records = 0;

  constructor(private readonly now: number) {}

  /** Live messages replayed. */
  get messages(): number {
    return this.#rows.size;
  }

  get recentIds(): RecentId[] {
    return [...this.#recent].flatMap(([queue, ring]) => ring.list(queue));
  }

  apply(record: LogRecord): void {
    this.records++;
    switch (record.type) {
      case 'queue-declared': {
        this.queues.set(record.name, { ...record.settings });
        // A changed dedupMaxIds applies to the ids before it too, as at
        // run time, where the engine trims or keeps its list.
        const ring = this.#recent.get(record.name);
        const capacity = this.dedupMaxIdsOf(record.name);
        if (ring !== undefined && ring.capacity !== capacity) {
          this.#recent.set(record.name, ring.resized(capacity));
        }
        return;
      }
      case 'queue-deleted':
        this.queues.delete(record.name);
        // A queue made again under this name starts with no ids.
        this.#recent.delete(record.name);
        return;
      case 'published':
        this.applyPublished(record);
        return;
      case 'settled':
        for (const seq of record.seqs) {
          this.#rows.delete(seq);
          this.#changes.delete(seq);
        }
        return;
      case 'retried':
        if (!this.#rows.has(record.seq)) return;
        this.changeOf(record.seq).failures = record.failures;
        this.changeOf(record.seq).availableAt = record.availableAt;
        return;
      case 'moved': {
        if (!this.#rows.has(record.seq)) return;
        const change = this.changeOf(record.seq);
        change.queue = record.queue;
        change.headers = record.headers;
        change.failures = record.failures;
        change.availableAt = record.availableAt;
        change.expiresAt = record.expiresAt;
        return;
      }
    }
  }

  /**
   * Hands every live message to `visit` in seq order, emptying the state
   * as it goes so that replay rows and rebuilt queues do not peak together.
   */
  drain(visit: (row: ReplayedRow) => void): void {
    const rows = this.#rows;
    const replayed: ReplayedRow = {
      seq: 0, queue: '', priority: 0, bodyBytes: 0, delayed: false, change: undefined,
    };
    rows.consume((seq, row: RowRef) => {
      const flags = rows.col(row, PRIORITY);
      replayed.seq = seq;
      replayed.queue = this.#queueNames[rows.col(row, QUEUE)];
      replayed.priority = flags & 0xff;
      replayed.bodyBytes = rows.col(row, BODY_BYTES);
      replayed.delayed = (flags & DELAYED_FLAG) !== 0;
      replayed.change = this.#changes.get(seq);
      visit(replayed);
    });
    this.#changes.clear();
  }

  private applyPublished(record: PublishedRecord): void {
    // A second `published` record is a compaction copy: it carries every
    // change made before it, so earlier ones are void.
    const isCopy = !this.#rows.put(record.seq, this.rowOf(record));
    this.#changes.delete(record.seq);

    const window = this.dedupWindowOf(record.queue);
    if (!isCopy && record.publishedAt > this.now - window) {
      let ring = this.#recent.get(record.queue);
      if (ring === undefined) {
        ring = new RecentRing(this.dedupMaxIdsOf(record.queue));
        this.#recent.set(record.queue, ring);
      }
      ring.add(record.id, record.publishedAt);
    }
  }

  private rowOf(record: PublishedRecord): number[] {
    let index = this.#queueIndex.get(record.queue);
    if (index === undefined) {
      index = this.#queueNames.push(record.queue) - 1;
      this.#queueIndex.set(record.queue, index);
    }
    const delayed = record.availableAt > this.now ? DELAYED_FLAG : 0;
    this.#row[QUEUE] = index;
    this.#row[PRIORITY] = record.priority | delayed;
    this.#row[BODY_BYTES] = record.body.length;
    return this.#row;
  }

  private changeOf(seq: number): ReplayedChange {
    let change = this.#changes.get(seq);
    if (change === undefined) {
      change = {};
      this.#changes.set(seq, change);
    }
    return change;
  }

  private dedupMaxIdsOf(queue: string): number {
    const max = this.queues.get(queue)?.dedupMaxIds;
    return typeof max === 'number' && Number.isInteger(max) && max >= 1 && max <= MAX_DEDUP_IDS
      ? max
      : DEDUP_MAX_IDS;
  }

  private dedupWindowOf(queue: string): number {
    const window = this.queues.get(queue)?.dedupWindowMs;
    return typeof window === 'number' ? window : DEFAULT_SETTINGS.dedupWindowMs;
  }
}

// The newest dedupMaxIds ids of one queue, overwritten in place: replay
// may pass ten million of them, and an object each would be garbage.
class RecentRing {
  readonly #ids: string[] = [];
  readonly #times: number[] = [];
  #next = 0;

  constructor(readonly capacity: number) {}

  /** The newest `capacity` of these ids, in a ring of that size. */
  resized(capacity: number): RecentRing {
    const ring = new RecentRing(capacity);
    for (const { id, publishedAt } of this.list('')) ring.add(id, publishedAt);
    return ring;
  }

  add(id: string, publishedAt: number): void {
    this.#ids[this.#next] = id;
    this.#times[this.#next] = publishedAt;
    this.#next = (this.#next + 1) % this.capacity;
  }

  /** Oldest first. */
  list(queue: string): RecentId[] {
    const count = this.#ids.length;
    const start = count < this.capacity ? 0 : this.#next;
    return Array.from({ length: count }, (_, k) => {
      const at = (start + k) % count;
      return { queue, id: this.#ids[at], publishedAt: this.#times[at] };
    });
  }
}
