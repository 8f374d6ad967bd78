// What the log store knows about the records it holds: which queues are
// declared, and for every live message, where its latest `published`
// record lies (segment, offset, frame length). Segment deletion and
// compaction decide from this, and a message whose body was let go of in
// memory is read back from there (frame-reader.ts).
//
// A message is live from its `published` record until a `settled` record
// names its seq. `moved` and `retried` records change the message but not
// where its body lies, so they leave the accounting alone. A second
// `published` record for the same seq (a compaction copy) moves the message
// to the copy's segment and offset.
//
// The live messages are rows of a SeqTable (about 21 bytes each), not one
// object each: at ten million waiting messages that is the difference
// between 200 MB and a gigabyte of heap.

import type { LogRecord, QueueSettingsRecord } from './records.js';
import { SeqTable } from './seq-table.js';

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

const SEGMENT = 0;
const OFFSET = 1;
const FRAME_BYTES = 2;

export class Ledger {
  /** Declared queues and their settings, in declaration order. */
  readonly queues = new Map<string, QueueSettingsRecord>();

  readonly #live = new SeqTable(3);
  readonly #segments = new Map<number, SegmentState>();
  readonly #row = [0, 0, 0];
  #liveBytes = 0;
  #highestSeq = 0;

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
   * Applies a record that is durable in `segment` as a frame of
   * `frameBytes` at `offset`. Call in log order: at replay, and when a
   * batch lands.
   */
  apply(
    record: LogRecord,
    segment: SegmentState,
    frameBytes: number,
    offset: number,
  ): void {
    switch (record.type) {
      case 'published': {
        // A seq above every one seen is new: no lookup for it (the hot path).
        if (record.seq <= this.#highestSeq) this.#forget(record.seq);
        this.#segments.set(segment.id, segment);
        this.#row[SEGMENT] = segment.id;
        this.#row[OFFSET] = offset;
        this.#row[FRAME_BYTES] = frameBytes;
        this.#live.put(record.seq, this.#row);
        segment.live++;
        segment.liveBytes += frameBytes;
        this.#liveBytes += frameBytes;
        this.#saw(record.seq);
        break;
      }
      case 'settled':
        for (const seq of record.seqs) {
          this.#forget(seq);
          this.#saw(seq);
        }
        break;
      case 'retried':
      case 'moved':
        this.#saw(record.seq);
        break;
      case 'queue-declared':
        this.queues.set(record.name, record.settings);
        break;
      case 'queue-deleted':
        this.queues.delete(record.name);
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
      frameBytes: this.#live.col(row, FRAME_BYTES),
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
      found.push([seq, this.#live.col(row, FRAME_BYTES)]);
      return found.length < max && found.length < segment.live;
    });
    return found;
  }

  /** Lets go of a deleted segment, which no live message names. */
  dropSegment(segment: SegmentState): void {
    this.#segments.delete(segment.id);
  }

  #forget(seq: number): void {
    const row = this.#live.find(seq);
    if (row === undefined) return;
    const segment = this.#segments.get(this.#live.col(row, SEGMENT));
    const bytes = this.#live.col(row, FRAME_BYTES);
    this.#live.deleteRow(row);
    if (segment !== undefined) {
      segment.live--;
      segment.liveBytes -= bytes;
    }
    this.#liveBytes -= bytes;
  }

  #saw(seq: number): void {
    if (seq > this.#highestSeq) this.#highestSeq = seq;
  }
}
