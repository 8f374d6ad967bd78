// What the log store knows about the records it holds: which queues are
// declared, and for every live message, where its latest `published`
// record lies (segment, offset, frame length). Segment deletion and
// compaction decide from this, and a message whose body was let go of in
// memory is read back from there (frame-reader.ts).
//
// A message is live from its `published` record until a `settled` record
// names its seq, or its queue's `queue-deleted` record comes: a delete
// settles what it knows of in its own write, but a message whose ack,
// purge or move failed as the delete was written was left live, and a
// queue made again under the name took it at the next start. `moved` and
// `retried` records change the message but not where its body lies, so
// they leave the accounting alone (a `moved` record changes its queue).
// A second `published` record for the same seq (a compaction copy, or a
// move written whole) moves the message to the copy's segment and
// offset, and to the copy's queue.
//
// Forgetting at a `queue-deleted` record is as safe for segment deletion
// as a `settled` record is: segments are deleted only as a prefix of the
// log (dead-segments.ts), so the record's segment goes only after every
// older one, and with them every `published` record it ended. Nothing
// writes a record into a queue while its delete is written (queues.ts),
// and records land in the order they were appended, so a message's
// record before the delete's is ended by it and one after is live again,
// at run time and at replay alike. Not over a checkpoint written while
// the delete landed if its rows show a message moved into the queue made
// again after it, nor if the delete ended a message whose queue its
// frames no longer show (its row taken before, its change or wide row
// gone when those were taken): checkpoint.ts gives such a checkpoint up
// (watchDeletes).
//
// The live messages are rows of a SeqTable (about 21 bytes each), not one
// object each: at ten million waiting messages that is the difference
// between 250 MB and a gigabyte of heap.
//
// Each row also keeps what a restart needs to put the message back in its
// queue without reading it (queue, priority, whether it was published
// delayed, body size), and the ledger keeps the changes `retried` and
// `moved` records made and the recent ids of each queue: everything replay
// rebuilds except bodies. So the ledger is what a checkpoint writes
// (checkpoint.ts), and a restart either replays the log into it or loads a
// checkpoint and replays only what came after.

import type { LogRecord, PublishedRecord, QueueSettingsRecord } from './records.js';
import { type RowRef, type RowRun, SeqTable } from './seq-table.js';
import { UUID_BYTES, type UuidTable, putUuid, uuidText } from './uuid-bytes.js';

/** Accounting for one segment file. */
export interface SegmentState {
  readonly id: number;
  readonly path: string;
  /** Bytes in the file: header plus whole frames. */
  size: number;
  /** Live messages whose latest `published` record is in this segment. */
  live: number;
  /** Frame bytes of those records. */
  liveBytes: number;
}

/** Where a live message's latest `published` frame lies. */
export interface FrameLocation {
  segment: SegmentState;
  offset: number;
  frameBytes: number;
}

/** What `retried` and `moved` records changed since the `published` one. */
export type MessageChange = Partial<
  Pick<PublishedRecord, 'queue' | 'headers' | 'failures' | 'availableAt' | 'expiresAt'>
>;

/** A live message as the log describes it, without its body. */
export interface LiveMessage {
  seq: number;
  /** The queue it was published to; `change.queue` if it moved since. */
  queue: string;
  priority: number;
  bodyBytes: number;
  /** Published with a delay: its record must be read to know when it is due. */
  delayed: boolean;
  change: MessageChange | undefined;
}

export interface RecentId {
  queue: string;
  id: string;
  publishedAt: number;
}

/** How many recent ids a queue keeps, and for how long (engine/dedup.ts). */
export interface RecentIdLimits {
  maxIds: number;
  /** Used when a queue's settings name no `dedupWindowMs`. */
  defaultWindowMs: number;
}

// Row columns, four u32. FRAME packs the frame's length (bits 0-26: a
// frame is at most MAX_RECORD_BYTES + 8 < 2^27), the priority (bits 27-30,
// 0-15; the engine's are 0-9) and the delayed flag (bit 31). QUEUE packs
// the queue's index in #queueNames (bits 0-15) and the frame bytes that
// are not body (bits 16-31), from which the body size follows. A row
// whose index or overhead does not fit in 16 bits (a broker that has seen
// 65,535 queue names, headers of 64 KiB) holds WIDE there and keeps both
// in #wide instead: one more column for every message would cost 40 MB at
// ten million.
export const LEDGER_COLUMNS = 4;
const SEGMENT = 0;
const OFFSET = 1;
const FRAME = 2;
const QUEUE = 3;
const FRAME_MASK = 0x07ff_ffff;
const PRIORITY_SHIFT = 27;
const DELAYED_FLAG = 0x8000_0000;
const NARROW_MAX = 0xffff;
const WIDE = 0xffff_ffff;
/** The queue index of a wide row not counted in #liveByQueue (#queueOf). */
const UNCOUNTED = -1;

export class Ledger {
  /** Declared queues and their settings, in declaration order. */
  readonly queues = new Map<string, QueueSettingsRecord>();

  readonly #live = new SeqTable(LEDGER_COLUMNS, { keepSpare: true });
  readonly #segments = new Map<number, SegmentState>();
  readonly #row = [0, 0, 0, 0];
  readonly #changes = new Map<number, MessageChange>();
  /** Queue index and body bytes of rows too wide for QUEUE, by seq. */
  readonly #wide = new Map<number, [queueIndex: number, bodyBytes: number]>();
  readonly #queueNames: string[] = [];
  readonly #queueIndex = new Map<string, number>();
  /**
   * Live messages by the index of their queue as of now (`change.queue`
   * after a `moved` record): a `queue-deleted` record looks for the ones
   * left only when its queue has some. Auto-delete and exclusive queues
   * are deleted by the hundred an hour, nearly always with every message
   * settled by the delete's own write, and a scan is a pass over every
   * live row: 24-42 ms a million on this 2-core machine under load.
   * Keeping the count costs a full replay about a tenth more (2M
   * messages, bench/storage.ts, three interleaved pairs on 2026-12-06:
   * 2.86-3.36 s against 2.57-3.02 without it); not yet tuned.
   */
  readonly #liveByQueue: number[] = [];
  readonly #recent = new Map<string, RecentIds>();
  readonly #recentLimits: RecentIdLimits;
  #liveBytes = 0;
  #highestSeq = 0;
  /**
   * Queues deleted since watchDeletes() (a checkpoint being written), and
   * whether a `moved` record has since moved a live message into one or
   * a `queue-deleted` record ended a live message.
   */
  #deletesWatched: Set<string> | undefined;
  #watchTripped = false;
  // What the last `published` record applied looked up, kept for the next:
  // a batch lands hundreds of records of one queue in one segment, and the
  // lookups were a tenth of the ledger's work a message. Forgotten when a
  // queue is declared or deleted, or a segment dropped.
  #lastSegment: SegmentState | undefined;
  #lastQueue: QueueLookups | undefined;

  constructor(recentLimits: RecentIdLimits = { maxIds: 0, defaultWindowMs: 0 }) {
    this.#recentLimits = recentLimits;
  }

  get liveMessages(): number {
    return this.#live.size;
  }

  get liveBytes(): number {
    return this.#liveBytes;
  }

  /** The highest seq any applied record has named. */
  get highestSeq(): number {
    return this.#highestSeq;
  }

  /**
   * Watches, from now, for a message moved into a queue deleted since
   * (made again under the name): a checkpoint written meanwhile may show
   * it there, and the replayed `queue-deleted` record would end it
   * (checkpoint.ts). Publishes and copies need no watch: their replayed
   * records put the message back whole. Watches too for a delete that
   * ends a live message: the row may go out before it, in its queue of
   * before a `moved` record, and the change naming the queue the delete
   * ended it in be gone when the changes go out (a wide row's queue the
   * same), so the replayed delete would not find it there.
   */
  watchDeletes(): void {
    this.#deletesWatched = new Set();
    this.#watchTripped = false;
  }

  /** Ends the watch: whether such a move or such a delete landed during it. */
  endWatch(): boolean {
    const tripped = this.#watchTripped;
    this.#deletesWatched = undefined;
    this.#watchTripped = false;
    return tripped;
  }

  /**
   * Applies a record that is durable in `segment` as a frame of
   * `frameBytes` at `offset`. Call in log order: at replay, and when a
   * batch lands. `ids`: a table holding a `published` record's id as
   * entry `index` (a batch's), read there instead of from the string.
   */
  apply(
    record: LogRecord,
    segment: SegmentState,
    frameBytes: number,
    offset: number,
    ids?: UuidTable,
    index = 0,
  ): void {
    switch (record.type) {
      case 'published': {
        // A seq above every one seen is new: no lookup for it (the hot path).
        // A second `published` record is a compaction copy: it carries
        // every change made before it.
        if (record.seq <= this.#highestSeq) this.#forget(record.seq);
        if (segment !== this.#lastSegment) {
          this.#segments.set(segment.id, segment);
          this.#lastSegment = segment;
        }
        this.#row[SEGMENT] = segment.id;
        this.#row[OFFSET] = offset;
        this.#countLive(this.#packInto(this.#row, record, frameBytes), 1);
        this.#live.put(record.seq, this.#row);
        segment.live++;
        segment.liveBytes += frameBytes;
        this.#liveBytes += frameBytes;
        this.#saw(record.seq);
        // A made id is never a dedup id: the engine keeps none of them
        // either (broker.ts), and they were most of the ledger's work a
        // message and of every checkpoint's recent ids.
        if (record.madeId !== true) this.#remember(record, ids, index);
        else this.#passOver(record);
        break;
      }
      case 'settled':
        for (const seq of record.seqs) {
          this.#forget(seq);
          this.#saw(seq);
        }
        break;
      case 'retried':
        this.#saw(record.seq);
        if (this.#live.has(record.seq)) {
          const change = this.#changeOf(record.seq);
          change.failures = record.failures;
          change.availableAt = record.availableAt;
        }
        break;
      case 'moved': {
        this.#saw(record.seq);
        const row = this.#live.find(record.seq);
        if (row !== undefined) {
          this.#countLive(this.#queueOf(record.seq, row), -1);
          this.#countLive(this.#indexOf(record.queue), 1);
          if (this.#deletesWatched?.has(record.queue)) this.#watchTripped = true;
          const change = this.#changeOf(record.seq);
          change.queue = record.queue;
          change.headers = record.headers;
          change.failures = record.failures;
          change.availableAt = record.availableAt;
          change.expiresAt = record.expiresAt;
        }
        break;
      }
      case 'queue-declared':
        // A queue made anew takes no ids left under its name: a publish
        // that lands after a delete of the queue is refused, yet its
        // record, after the `queue-deleted` one, named an id.
        if (!this.queues.has(record.name)) this.#recent.delete(record.name);
        this.queues.set(record.name, record.settings);
        this.#lastQueue = undefined;
        break;
      case 'queue-deleted':
        this.#deletesWatched?.add(record.name);
        this.queues.delete(record.name);
        this.#lastQueue = undefined;
        // A queue made again under the name must not take the old one's
        // ids for duplicates, nor its messages.
        this.#recent.delete(record.name);
        if (this.#forgetQueue(record.name) && this.#deletesWatched !== undefined) {
          this.#watchTripped = true;
        }
        break;
    }
  }

  /** Where the latest `published` frame of live message `seq` lies. */
  locate(seq: number): FrameLocation | undefined {
    const row = this.#live.find(seq);
    if (row === undefined) return undefined;
    const segment = this.#segments.get(this.#live.col(row, SEGMENT));
    if (segment === undefined) return undefined;
    return {
      segment,
      offset: this.#live.col(row, OFFSET),
      frameBytes: this.#live.col(row, FRAME) & FRAME_MASK,
    };
  }

  /**
   * Up to `max` seqs (with their frame sizes) of live messages whose latest
   * copy is in `segment`, lowest seq first. Scans the table from the
   * start, stopping once the segment's live messages are all found; meant
   * for the oldest segment, whose messages have the lowest seqs.
   */
  oldestIn(segment: SegmentState, max: number): Array<[number, number]> {
    const found: Array<[number, number]> = [];
    if (segment.live === 0) return found;
    this.#live.forEach((seq, row) => {
      if (this.#live.col(row, SEGMENT) !== segment.id) return true;
      found.push([seq, this.#live.col(row, FRAME) & FRAME_MASK]);
      return found.length < max && found.length < segment.live;
    });
    return found;
  }

  /**
   * Live messages whose latest `published` frame overlaps one of
   * `stretches` of segment `segmentId`, with their queues: what damage
   * found there costs (scrub.ts). One pass over the table; rare.
   */
  liveIn(
    segmentId: number,
    stretches: ReadonlyArray<{ offset: number; bytes: number }>,
  ): Array<{ seq: number; queue: string }> {
    const found: Array<{ seq: number; queue: string }> = [];
    this.#live.forEach((seq, row) => {
      if (this.#live.col(row, SEGMENT) !== segmentId) return;
      const start = this.#live.col(row, OFFSET);
      const end = start + (this.#live.col(row, FRAME) & FRAME_MASK);
      const hit = stretches.some((s) => start < s.offset + s.bytes && s.offset < end);
      if (!hit) return;
      // Every wide row has its queue by now: the replay after a
      // checkpoint load put back any that had none.
      found.push({ seq, queue: this.#queueNames[this.#queueOf(seq, row)] });
    });
    return found;
  }

  /** Lets go of a deleted segment, which no live message names. */
  dropSegment(segment: SegmentState): void {
    this.#segments.delete(segment.id);
    this.#lastSegment = undefined;
  }

  /**
   * Every live message in seq order, without its body. `visit` gets the
   * same object each time, changed in place: copy what it keeps.
   */
  forEachLive(visit: (message: LiveMessage) => void): void {
    const message: LiveMessage = {
      seq: 0, queue: '', priority: 0, bodyBytes: 0, delayed: false, change: undefined,
    };
    this.#live.forEach((seq, row) => {
      const frame = this.#live.col(row, FRAME);
      const queue = this.#live.col(row, QUEUE);
      message.seq = seq;
      message.priority = (frame >>> PRIORITY_SHIFT) & 0xf;
      message.delayed = (frame & DELAYED_FLAG) !== 0;
      if (queue === WIDE) {
        const [index, bodyBytes] = this.#wide.get(seq) ?? [0, 0];
        message.queue = this.#queueNames[index];
        message.bodyBytes = bodyBytes;
      } else {
        message.queue = this.#queueNames[queue & NARROW_MAX];
        message.bodyBytes = (frame & FRAME_MASK) - (queue >>> 16);
      }
      message.change = this.#changes.get(seq);
      visit(message);
    });
  }

  /** The ids each queue published most recently, oldest first. */
  recentIds(): RecentId[] {
    return [...this.#recent].flatMap(([queue, ids]) => ids.list(queue));
  }

  /**
   * A copy of every queue's recent ids as they are now: three array copies
   * a queue, cheap enough to take at the checkpoint's position.
   */
  recentSnapshot(): RecentCopy[] {
    return [...this.#recent].map(([queue, ids]) => ({ queue, ...ids.snapshot() }));
  }

  // What the checkpoint writer and loader need (checkpoint.ts). The rows
  // go out as raw columns, the queue index included, so the names go with
  // them.

  get queueNames(): readonly string[] {
    return this.#queueNames;
  }

  get changes(): ReadonlyMap<number, MessageChange> {
    return this.#changes;
  }

  get wide(): ReadonlyMap<number, readonly [number, number]> {
    return this.#wide;
  }

  /**
   * The rows with seq above `after`, a run of the table at a time (rows
   * LEDGER_COLUMNS wide), until `visit` returns false. The run views the
   * table's own arrays, valid during the call only, so a checkpoint of
   * ten million rows makes no object, and calls nothing, for each
   * (checkpoint-rows.ts).
   */
  forEachRunAfter(after: number, visit: (run: RowRun) => boolean): void {
    this.#live.forEachRunAfter(after, visit);
  }

  // The count of live messages by queue is not in the checkpoint: each
  // restore adds what it learns of a row's queue, in whatever order the
  // rows, wide rows and changes come.

  /**
   * Puts back a live row read from a checkpoint, in `segment` (the one its
   * SEGMENT column names). Fastest in seq order.
   */
  restoreRow(seq: number, columns: ArrayLike<number>, segment: SegmentState): void {
    this.#segments.set(segment.id, segment);
    this.#live.put(seq, columns);
    // A wide row is counted when its queue comes (restoreWide).
    if (columns[QUEUE] !== WIDE) this.#countLive(columns[QUEUE] & NARROW_MAX, 1);
    const frameBytes = columns[FRAME] & FRAME_MASK;
    segment.live++;
    segment.liveBytes += frameBytes;
    this.#liveBytes += frameBytes;
    this.#saw(seq);
  }

  restoreQueueName(name: string): void {
    this.#lastQueue = undefined;
    this.#queueIndex.set(name, this.#queueNames.push(name) - 1);
  }

  restoreWide(seq: number, queueIndex: number, bodyBytes: number): void {
    if (!this.#live.has(seq)) return;
    this.#wide.set(seq, [queueIndex, bodyBytes]);
    // Moved since: counted under its new queue (restoreChange).
    if (this.#changes.get(seq)?.queue === undefined) this.#countLive(queueIndex, 1);
  }

  restoreChange(seq: number, change: MessageChange): void {
    const row = this.#live.find(seq);
    if (row === undefined) return;
    if (change.queue !== undefined) {
      const column = this.#live.col(row, QUEUE);
      // A wide row whose queue has not come yet was not counted.
      const counted = column !== WIDE ? column & NARROW_MAX : this.#wide.get(seq)?.[0];
      if (counted !== undefined) this.#countLive(counted, -1);
      this.#countLive(this.#indexOf(change.queue), 1);
    }
    this.#changes.set(seq, change);
  }

  restoreRecent({ queue, lastSeq, ids, times }: RecentSnapshot): void {
    this.#recentOf(queue).restore(lastSeq, ids, times);
  }

  restoreHighestSeq(seq: number): void {
    this.#saw(seq);
  }

  /**
   * Drops the live rows in the segments `segmentIds`: after a checkpoint
   * load, those of segments deleted since it was written. Returns how many.
   */
  dropRowsIn(segmentIds: ReadonlySet<number>): number {
    const seqs: number[] = [];
    this.#live.forEach((seq, row) => {
      if (segmentIds.has(this.#live.col(row, SEGMENT))) seqs.push(seq);
    });
    for (const seq of seqs) this.#forget(seq);
    for (const id of segmentIds) this.#segments.delete(id);
    this.#lastSegment = undefined;
    return seqs.length;
  }

  // false when `seq` was not live.
  #forget(seq: number): boolean {
    const row = this.#live.find(seq);
    if (row === undefined) return false;
    const segment = this.#segments.get(this.#live.col(row, SEGMENT));
    const bytes = this.#live.col(row, FRAME) & FRAME_MASK;
    this.#countLive(this.#queueOf(seq, row), -1);
    this.#live.deleteRow(row);
    this.#changes.delete(seq);
    if (this.#wide.size > 0) this.#wide.delete(seq);
    if (segment !== undefined) {
      segment.live--;
      segment.liveBytes -= bytes;
    }
    this.#liveBytes -= bytes;
    return true;
  }

  // Forgets every live message now in queue `name`, which a
  // `queue-deleted` record ends; whether there was one. Rare: the
  // delete's own write settles what it knows of.
  #forgetQueue(name: string): boolean {
    const index = this.#queueIndex.get(name);
    if (index === undefined) return false;
    const count = this.#liveByQueue[index] ?? 0;
    if (count <= 0) return false;
    const seqs: number[] = [];
    this.#live.forEach((seq, row) => {
      if (this.#queueOf(seq, row) === index) seqs.push(seq);
      return seqs.length < count;
    });
    for (const seq of seqs) this.#forget(seq);
    return seqs.length > 0;
  }

  // The index of the queue a live row is in now, or UNCOUNTED for a wide
  // row whose queue is not known: one a fuzzy checkpoint packed wide and
  // whose message a narrow copy replaced before the wide rows were
  // written (checkpoint.ts). Never counted, it must not be uncounted
  // either: taken as queue 0, the copy's replay took one from that
  // queue's count, and a delete of it then left one of its messages live.
  #queueOf(seq: number, row: RowRef): number {
    if (this.#changes.size > 0) {
      const moved = this.#changes.get(seq)?.queue;
      if (moved !== undefined) return this.#indexOf(moved);
    }
    const column = this.#live.col(row, QUEUE);
    return column === WIDE ? (this.#wide.get(seq)?.[0] ?? UNCOUNTED) : column & NARROW_MAX;
  }

  #countLive(index: number, delta: number): void {
    if (index === UNCOUNTED) return;
    const counts = this.#liveByQueue;
    while (counts.length <= index) counts.push(0);
    counts[index] += delta;
  }

  // The queue's index in #queueNames, given one if new.
  #indexOf(queue: string): number {
    let index = this.#queueIndex.get(queue);
    if (index === undefined) {
      index = this.#queueNames.push(queue) - 1;
      this.#queueIndex.set(queue, index);
    }
    return index;
  }

  // Returns the queue's index.
  #packInto(row: number[], record: PublishedRecord, frameBytes: number): number {
    const index = this.#lookups(record.queue).index;
    const delayed = record.availableAt > record.publishedAt ? DELAYED_FLAG : 0;
    const priority = Math.min(Math.max(record.priority | 0, 0), 15);
    row[FRAME] = (frameBytes | (priority << PRIORITY_SHIFT) | delayed) >>> 0;
    const overhead = frameBytes - record.body.length;
    if (index < NARROW_MAX && overhead < NARROW_MAX) {
      row[QUEUE] = (index | (overhead << 16)) >>> 0;
    } else {
      row[QUEUE] = WIDE;
      this.#wide.set(record.seq, [index, record.body.length]);
    }
    return index;
  }

  #changeOf(seq: number): MessageChange {
    let change = this.#changes.get(seq);
    if (change === undefined) {
      change = {};
      this.#changes.set(seq, change);
    }
    return change;
  }

  #remember(record: PublishedRecord, ids: UuidTable | undefined, index: number): void {
    if (this.#recentLimits.maxIds === 0) return;
    const { recent, maxIds, windowMs } = this.#lookups(record.queue);
    (recent ?? this.#recentOf(record.queue)).add(
      record.id, record.publishedAt, record.seq, maxIds, windowMs, ids, index);
  }

  // A made id is not kept, but its seq is taken (RecentIds): a later
  // record of the message without the flag (a nack's new headers, a scrub
  // repair, a compaction copy of either) then adds no id, as none of the
  // message's records did before the flag.
  #passOver(record: PublishedRecord): void {
    if (this.#recentLimits.maxIds === 0) return;
    const { recent } = this.#lookups(record.queue);
    (recent ?? this.#recentOf(record.queue)).passOver(record.seq);
  }

  // The queue's index in #queueNames (given one if new) and its recent-id
  // bounds, from the last record's lookups if of the same queue.
  #lookups(queue: string): QueueLookups {
    const last = this.#lastQueue;
    if (last !== undefined && last.queue === queue) return last;

    const index = this.#indexOf(queue);
    const { maxIds: defaultMaxIds, defaultWindowMs } = this.#recentLimits;
    const settings = this.queues.get(queue);
    const window = settings?.dedupWindowMs;
    // A queue's own bound (dedupMaxIds), as its engine keeps at run time.
    const max = settings?.dedupMaxIds;
    const valid = typeof max === 'number' && Number.isInteger(max) && max >= 1;
    const lookups: QueueLookups = {
      queue,
      index,
      // Made by #remember on the queue's first id, so none for a queue
      // the ledger keeps no ids of.
      recent: this.#recent.get(queue),
      maxIds: valid ? max : defaultMaxIds,
      windowMs: typeof window === 'number' ? window : defaultWindowMs,
    };
    this.#lastQueue = lookups;
    return lookups;
  }

  #recentOf(queue: string): RecentIds {
    let ids = this.#recent.get(queue);
    if (ids === undefined) {
      ids = new RecentIds();
      this.#recent.set(queue, ids);
      if (this.#lastQueue?.queue === queue) this.#lastQueue.recent = ids;
    }
    return ids;
  }

  #saw(seq: number): void {
    if (seq > this.#highestSeq) this.#highestSeq = seq;
  }
}

/** What the ledger looks up for a queue's `published` record (Ledger.#lookups). */
interface QueueLookups {
  readonly queue: string;
  readonly index: number;
  recent: RecentIds | undefined;
  readonly maxIds: number;
  readonly windowMs: number;
}

/** A queue's recent ids as a checkpoint holds them. */
export interface RecentSnapshot {
  queue: string;
  /** Highest seq whose id was taken: a record at or below it adds none. */
  lastSeq: number;
  ids: string[];
  times: number[];
}

/**
 * A queue's recent ids as the ledger keeps them, copied for a checkpoint
 * (checkpoint-recent.ts packs them without spelling the UUIDs out).
 */
export interface RecentCopy {
  queue: string;
  lastSeq: number;
  /** Oldest first; undefined for a UUID, whose 16 bytes are in `uuids` at 16 x its index. */
  ids: (string | undefined)[];
  uuids: Uint8Array;
  times: Float64Array;
}

/** The id at `index` of a RecentCopy (or a slice of one). */
export function recentIdAt(
  copy: Pick<RecentCopy, 'ids' | 'uuids'>,
  index: number,
): string {
  return copy.ids[index] ?? uuidText(copy.uuids, UUID_BYTES * index);
}

// The newest ids of one queue, at most maxIds and none older than the
// queue's dedup window before the newest. Typed arrays with a moving
// head, not an object an id: replay may pass ten million of them.
//
// A UUID (what the broker makes for a message without an id) is kept as
// its 16 bytes in one typed array, and any other id in a map by its
// position: kept as strings, every published id outlived the young
// generation, was copied into the old one and died there 100,000
// messages later: work for both collectors on every message. Kept as
// bytes, bench:storage's growth took 2.41 us of CPU a message instead of
// 3.24 (issue #3; best of four interleaved runs of 1M at load 6-7). The
// times are a Float64Array for the same reason: as arrays, ids and times
// grew, and were sliced to drop the oldest, by ~55 bytes a message.
//
// Positions count every id ever added (#dropped of them since let go of),
// so an id's key in #texts stays the same when the arrays drop their
// oldest.
//
// Only a seq above every one taken adds its id. That leaves out
// compaction copies (a `published` record again, with the same id), and
// the records after a checkpoint that it already counted. It also leaves
// out a message moved in from a `memory` queue, which keeps its older seq:
// its id is not remembered across a restart.
class RecentIds {
  // Small at first, doubled as ids come: a broker may have many queues
  // that each publish little.
  #uuids = new Uint8Array(UUID_BYTES * 16);
  #times = new Float64Array(16);
  /** Ids that are not UUIDs, by position. */
  readonly #texts = new Map<number, string>();
  /** Ids let go of and dropped from the front of the arrays. */
  #dropped = 0;
  /** Index of the oldest id kept, and one past the newest. */
  #head = 0;
  #end = 0;
  #lastSeq = 0;

  /** `ids`: a table holding `id` as entry `index`, or none (Ledger.apply). */
  add(
    id: string,
    publishedAt: number,
    seq: number,
    maxIds: number,
    windowMs: number,
    ids?: UuidTable,
    index = 0,
  ): void {
    if (seq <= this.#lastSeq) return;
    this.#lastSeq = seq;
    if (maxIds === 0) return;
    this.#push(id, publishedAt, ids, index);
    const oldest = publishedAt - windowMs;
    while (this.#end - this.#head > maxIds || this.#times[this.#head] < oldest) {
      if (this.#texts.size > 0) this.#texts.delete(this.#dropped + this.#head);
      this.#head++;
    }
  }

  /** Takes `seq` as add does, keeping no id for it. */
  passOver(seq: number): void {
    if (seq > this.#lastSeq) this.#lastSeq = seq;
  }

  /** Appends ids from a checkpoint, which may come in several pieces. */
  restore(lastSeq: number, ids: readonly string[], times: readonly number[]): void {
    for (let i = 0; i < ids.length; i++) this.#push(ids[i], times[i]);
    this.#lastSeq = Math.max(this.#lastSeq, lastSeq);
  }

  /** Ids and times, oldest first, as copies. */
  snapshot(): Omit<RecentCopy, 'queue'> {
    // Filled, not holey: map() and forEach() skip holes.
    const ids = new Array<string | undefined>(this.#end - this.#head).fill(undefined);
    for (const [position, id] of this.#texts) ids[position - this.#dropped - this.#head] = id;
    return {
      lastSeq: this.#lastSeq,
      ids,
      uuids: this.#uuids.slice(UUID_BYTES * this.#head, UUID_BYTES * this.#end),
      times: this.#times.slice(this.#head, this.#end),
    };
  }

  /** Oldest first. */
  list(queue: string): RecentId[] {
    const list: RecentId[] = [];
    for (let i = this.#head; i < this.#end; i++) {
      const id = this.#texts.get(this.#dropped + i) ?? uuidText(this.#uuids, UUID_BYTES * i);
      list.push({ queue, id, publishedAt: this.#times[i] });
    }
    return list;
  }

  #push(id: string, publishedAt: number, ids?: UuidTable, index = 0): void {
    if (this.#end === this.#times.length) this.#makeRoom();
    const at = this.#end++;
    if (ids === undefined) {
      // putUuid writes only into this entry's 16 bytes, even for another id.
      if (putUuid(this.#uuids, UUID_BYTES * at, id) < 0) this.#texts.set(this.#dropped + at, id);
    } else if (ids.isUuid(index)) {
      ids.copyTo(index, this.#uuids, UUID_BYTES * at);
    } else {
      this.#texts.set(this.#dropped + at, id);
    }
    this.#times[at] = publishedAt;
  }

  // Full: drops the ids let go of from the front if they are half or
  // more, else doubles the arrays. A queue at its bound then moves its
  // ids down once every maxIds new ones, and allocates nothing.
  #makeRoom(): void {
    const head = this.#head;
    if (head * 2 >= this.#end) {
      this.#uuids.copyWithin(0, UUID_BYTES * head, UUID_BYTES * this.#end);
      this.#times.copyWithin(0, head, this.#end);
      this.#dropped += head;
      this.#end -= head;
      this.#head = 0;
      return;
    }
    const uuids = new Uint8Array(2 * this.#uuids.length);
    uuids.set(this.#uuids.subarray(0, UUID_BYTES * this.#end));
    this.#uuids = uuids;
    const times = new Float64Array(2 * this.#times.length);
    times.set(this.#times.subarray(0, this.#end));
    this.#times = times;
  }
}
