// What a log store is opened with and what it reports: its options, the
// logger it writes to, and the figures stats() returns. Apart from
// log-store.ts so that the store reads from open() down, and so that its
// parts can name these shapes without importing the store itself.

import type { CheckpointOptions, CheckpointStats } from './checkpoint.js';
import type { StoreIo } from './io.js';
import type { RecentIdLimits } from './ledger.js';
import type { PublishedRecord } from './records.js';
import type { ScrubStats } from './scrub.js';

/** The part of a pino logger the store uses; tests pass a silent one. */
export interface StoreLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface LogStoreOptions {
  /** Directory of segment files; created if missing. */
  dir: string;
  /** Start a new segment once a batch takes the active one past this. */
  segmentBytes?: number;
  /**
   * Dead segments bigger than this are cut in steps of this size before
   * their unlink (dead-segments.ts); default SHRINK_STEP_BYTES. Tests set
   * it small to run that path with small segments.
   */
  shrinkStepBytes?: number;
  /**
   * true (default): fdatasync before a batch is confirmed, unless every
   * append in it asked for `sync: false`. false: confirm every batch once
   * write() has handed it to the OS; the log is still fdatasynced before
   * a segment is rolled and at close.
   */
  sync?: boolean;
  /**
   * Synced batches in flight at once, each through a descriptor of its
   * own (in-flight.ts); default DEFAULT_SYNCS_IN_FLIGHT. Tests of the
   * group commit set it to pin down what waits.
   */
  syncsInFlight?: number;
  logger: StoreLogger;
  /**
   * Current state of a live message as a `published` record with the same
   * seq, or undefined if it is not live. Used by compaction to copy the
   * message forward. The copy lands in the log after every record already
   * passed to `append`, so it must reflect those records' changes, durable
   * or not; otherwise replay would undo them. Returning undefined is always
   * safe: the message is simply not copied this round.
   */
  snapshotMessage(seq: number): PublishedRecord | undefined;
  /** File operations of the write path; tests inject faults here. */
  io?: StoreIo;
  /**
   * false: the body of a `published` record passed to `replay` is a view
   * into a read buffer, valid only during the call. For a caller that
   * keeps only its size; saves a copy of every body at open. Default true.
   */
  copyReplayedBodies?: boolean;
  /**
   * When to write checkpoints and whether to load them (checkpoint.ts).
   * Unset: none written, none loaded; every open replays the whole log.
   */
  checkpoints?: CheckpointOptions;
  /** Recent ids the ledger keeps a queue for dedup across restarts; none if unset. */
  recentIds?: RecentIdLimits;
  /**
   * After a start from a checkpoint, check the segments it covers in the
   * background (scrub.ts). Default true.
   */
  scrubAfterOpen?: boolean;
  /**
   * Live messages whose frames a scrub found damaged: their bodies on disk
   * are gone. The owner of the queues settles them, or logs them again
   * from the copy it holds in memory (broker.ts). Unset: only reported.
   */
  onDamagedMessages?(messages: DamagedMessage[]): void;
}

/** A live message whose latest `published` frame lies in a damaged stretch. */
export interface DamagedMessage {
  seq: number;
  queue: string;
}

export type LogStoreStats = {
  segments: number;
  /** Bytes in all segment files. */
  diskBytes: number;
  liveMessages: number;
  /** Frame bytes of each live message's latest `published` record. */
  liveBytes: number;
  /** Torn tails of the last segment cut off (or it removed) at open. */
  corruptTails: number;
  /**
   * Damaged stretches skipped at open and left on disk: corruption in a
   * complete segment, records lost. Should be 0.
   */
  corruptRegions: number;
  /** Segment files found missing between others at open. Should be 0. */
  missingSegments: number;
  /** Bytes of batches that landed; failed batches are not counted. */
  bytesWritten: number;
  /** Batches that landed. */
  batches: number;
  /** Synced batches that landed: an fdatasync or an O_DSYNC write each. */
  syncs: number;
  /** Synced batches started while another was syncing (write-loop.ts). */
  syncsOverlapped: number;
  /** Messages copied forward by compaction. */
  compactedMessages: number;
  /** Frames read back that a read ahead had brought in off the event loop. */
  framesReadAhead: number;
  /** Frames read back synchronously, on the event loop. */
  framesReadInLine: number;
  /** 1 once a failed batch could not be cut back; every append rejects. */
  stopped: number;
  /** Records replayed at open: after the checkpoint, if one was loaded. */
  replayedRecords: number;
  /** 1 if open started from a checkpoint. */
  openedFromCheckpoint: number;
  /** Damaged stretches scrubs found that open had not (also in corruptRegions). */
  scrubCorruptRegions: number;
  /** Live messages whose frames a scrub found damaged. Should be 0. */
  scrubDamagedMessages: number;
} & CheckpointStats & ScrubStats;
