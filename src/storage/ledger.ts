// What the log store knows about the records it holds: which queues are
// declared, and for every live message, which segment has its latest
// `published` record. Segment deletion and compaction decide from this.
//
// A message is live from its `published` record until a `settled` record
// names its seq. `moved` and `retried` records change the message but not
// where its body lies, so they leave the accounting alone. A second
// `published` record for the same seq (a compaction copy) moves the message
// to the copy's segment.

import type { LogRecord, QueueSettingsRecord } from './records.js';

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

interface LiveMessage {
  segment: SegmentState;
  bytes: number;
}

export class Ledger {
  /** Declared queues and their settings, in declaration order. */
  readonly queues = new Map<string, QueueSettingsRecord>();

  // Insertion order is the log order of each message's latest `published`
  // record: a re-publish deletes and re-inserts its entry. So the messages
  // of the oldest segment are always at the front, and compaction finds
  // them without scanning the rest.
  readonly #live = new Map<number, LiveMessage>();
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
   * `frameBytes`. Call in log order: at replay, and when a batch lands.
   */
  apply(record: LogRecord, segment: SegmentState, frameBytes: number): void {
    switch (record.type) {
      case 'published': {
        this.#forget(record.seq);
        this.#live.set(record.seq, { segment, bytes: frameBytes });
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

  /**
   * Seqs (with their frame sizes) of live messages whose latest copy is in
   * `segment`, oldest first. Only meaningful for the oldest segment, whose
   * messages lead the map.
   */
  *oldestIn(segment: SegmentState): Generator<[number, number]> {
    for (const [seq, message] of this.#live) {
      if (message.segment !== segment) return;
      yield [seq, message.bytes];
    }
  }

  #forget(seq: number): void {
    const message = this.#live.get(seq);
    if (message === undefined) return;
    this.#live.delete(seq);
    message.segment.live--;
    message.segment.liveBytes -= message.bytes;
    this.#liveBytes -= message.bytes;
  }

  #saw(seq: number): void {
    if (seq > this.#highestSeq) this.#highestSeq = seq;
  }
}
