// Usher's write-ahead log: every durable change is a record appended to a
// segment file (layout in segment-file.ts, frames in codec.ts). Appends are
// group-committed (write-loop.ts), dead segments are deleted oldest first
// (dead-segments.ts), and compaction copies the few long-lived messages
// forward so old segments can go (compaction.ts). LogStore is the face
// the broker sees: it opens the log, reads messages back, scrubs and
// closes it, and hands those parts what they share.

import { mkdir } from 'node:fs/promises';
import { StoreUnavailableError, UsherError } from '../errors.js';
import { LatencyHistogram } from '../observe/latency.js';
import {
  CHECKPOINTS_SUPPORTED,
  type CheckpointStats,
  Checkpointer,
} from './checkpoint.js';
import { type PublishedHead } from './codec-decode.js';
import { Compaction } from './compaction.js';
import { DeadSegments, SHRINK_STEP_BYTES } from './dead-segments.js';
import { FrameReader } from './frame-reader.js';
import { type StoreIo, nodeIo } from './io.js';
import { DEFAULT_SYNCS_IN_FLIGHT } from './in-flight.js';
import {
  type FrameLocation,
  Ledger,
  type LiveMessage,
  type RecentId,
  type SegmentState,
} from './ledger.js';
import type { LogStoreOptions, LogStoreStats, StoreLogger } from './log-store-types.js';
import type { LogRecord, PublishedRecord } from './records.js';
import { recover } from './recovery.js';
import { ScrubDamage } from './scrub-damage.js';
import { type ScrubTarget, Scrubber } from './scrub.js';
import { WriteLoop } from './write-loop.js';

// The store's options and figures live in log-store-types.ts; callers
// name them from here, beside the store.
export type {
  DamagedMessage,
  LogStoreOptions,
  LogStoreStats,
  StoreLogger,
} from './log-store-types.js';
export { EARLY_START_BYTES, UNANSWERED_WAIT_MS } from './write-loop.js';

const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

/** Bounds of batchTimes: a synced batch here takes 0.1-0.4 ms; a stall, hundreds. */
export const STORE_BATCH_BUCKETS_SECONDS = [
  0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
] as const;

export class LogStore {
  readonly #dir: string;
  readonly #logger: StoreLogger;
  readonly #io: StoreIo;
  readonly #ledger: Ledger;
  readonly #reader = new FrameReader();

  /** Oldest first; the active segment is always last. */
  readonly #segments: SegmentState[];
  #lastSeq: number;

  /**
   * Each batch's time from its write starting to its landing (written,
   * and synced if it asked to be): the disk's part of a durable publish's
   * latency, and where a stall of the disk shows (STORE_BATCH_BUCKETS_SECONDS).
   */
  readonly batchTimes = new LatencyHistogram(STORE_BATCH_BUCKETS_SECONDS);
  /** Gathers appends into batches, writes and lands them (write-loop.ts). */
  readonly #writeLoop: WriteLoop;
  /** Deletes dead segments beside the write loop (dead-segments.ts). */
  readonly #deadSegments: DeadSegments;
  /** Copies the oldest segment's live messages forward (compaction.ts). */
  readonly #compaction: Compaction;
  #closing = false;
  #closed: Promise<void> | undefined;

  #diskBytes = 0;
  #corruptTails: number;
  #corruptRegions: number;
  #missingSegments: number;
  readonly #replayedRecords: number;
  readonly #openedFromCheckpoint: boolean;
  readonly #checkpointer: Checkpointer | undefined;
  readonly #scrubber: Scrubber;
  readonly #scrubDamage: ScrubDamage;

  /**
   * Opens the log in `options.dir`, replaying every valid record in log
   * order before resolving. Writing always continues in a new segment.
   */
  static async open(
    options: LogStoreOptions,
    replay: (record: LogRecord) => void,
  ): Promise<LogStore> {
    let replayFailed = false;
    try {
      await mkdir(options.dir, { recursive: true });
      const recovered = await recover(
        options.dir,
        options.logger,
        (record) => {
          try {
            replay(record);
          } catch (err) {
            replayFailed = true;
            throw err;
          }
        },
        {
          copyBodies: options.copyReplayedBodies ?? true,
          checkpoints: CHECKPOINTS_SUPPORTED
            ? options.checkpoints ?? { enabled: false }
            : { enabled: false },
          recentIds: options.recentIds,
        },
      );
      const ledger = recovered.ledger;

      const store = new LogStore(options, ledger, recovered);
      store.#writeLoop.startSegment(await store.#writeLoop.createSegment());
      await store.#deadSegments.deleteNow();
      const position = recovered.checkpointPosition;
      if (position !== undefined && options.scrubAfterOpen !== false) {
        store.#scrubber.start(store.#coveredBy(position.segmentId, position.offset));
      }
      options.logger.info(
        {
          dir: options.dir,
          segments: store.#segments.length,
          liveMessages: ledger.liveMessages,
          corruptTails: recovered.corruptTails,
          corruptRegions: recovered.corruptRegions,
          missingSegments: recovered.missingSegments,
          checkpoint: recovered.checkpoint ?? null,
          replayedRecords: recovered.records,
        },
        'log store opened',
      );
      return store;
    } catch (err) {
      if (replayFailed || err instanceof UsherError) throw err;
      throw new StoreUnavailableError(
        `opening the log in "${options.dir}" failed: ${describe(err)}`,
        err,
      );
    }
  }

  private constructor(
    options: LogStoreOptions,
    ledger: Ledger,
    recovered: Awaited<ReturnType<typeof recover>>,
  ) {
    const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.#dir = options.dir;
    this.#logger = options.logger;
    this.#io = options.io ?? nodeIo;
    this.#ledger = ledger;
    this.#segments = recovered.segments;
    this.#lastSeq = recovered.lastSeq;
    this.#corruptTails = recovered.corruptTails;
    this.#corruptRegions = recovered.corruptRegions;
    this.#missingSegments = recovered.missingSegments;
    for (const segment of this.#segments) this.#diskBytes += segment.size;
    this.#replayedRecords = recovered.records;
    this.#openedFromCheckpoint = recovered.checkpoint !== undefined;
    this.#scrubDamage = new ScrubDamage({
      logger: this.#logger,
      ledger,
      segments: this.#segments,
      known: recovered.regionStarts,
      onDamagedMessages: options.onDamagedMessages,
    });
    this.#deadSegments = new DeadSegments({
      dir: this.#dir,
      io: this.#io,
      logger: this.#logger,
      shrinkStepBytes: options.shrinkStepBytes ?? SHRINK_STEP_BYTES,
      segments: this.#segments,
      forget: (segment) => this.#reader.forget(segment.id),
      dropped: (segment) => {
        this.#ledger.dropSegment(segment);
        this.#diskBytes -= segment.size;
      },
    });
    this.#compaction = new Compaction({
      logger: this.#logger,
      ledger,
      segments: this.#segments,
      segmentBytes,
      snapshotMessage: options.snapshotMessage,
      diskBytes: () => this.#diskBytes,
      closing: () => this.#closing,
      append: (copies) => this.#writeLoop.gather(copies, copies.length, true),
    });
    this.#writeLoop = new WriteLoop({
      dir: this.#dir,
      io: this.#io,
      logger: this.#logger,
      sync: options.sync ?? true,
      syncsInFlight: options.syncsInFlight ?? DEFAULT_SYNCS_IN_FLIGHT,
      segmentBytes,
      ledger,
      segments: this.#segments,
      nextSegmentId: recovered.lastSegmentId + 1,
      batchTimes: this.batchTimes,
      deadSegments: this.#deadSegments,
      compaction: this.#compaction,
      lastSeq: () => this.#lastSeq,
      closing: () => this.#closing,
      grew: (bytes) => {
        this.#diskBytes += bytes;
      },
      wrote: (bytes) => this.#checkpointer?.wrote(bytes),
    });
    this.#scrubber = new Scrubber({
      logger: this.#logger,
      onDamage: (target, damage) => {
        this.#corruptRegions += this.#scrubDamage.found(target, damage);
      },
    });
    const checkpoints = options.checkpoints;
    if (CHECKPOINTS_SUPPORTED && checkpoints !== undefined && checkpoints.enabled !== false) {
      this.#checkpointer = new Checkpointer(this.#dir, options.checkpoints ?? {}, this.#logger, {
        ledger,
        position: () => ({
          segmentId: this.#writeLoop.active.id,
          offset: this.#writeLoop.active.size,
        }),
        lastSeq: () => this.#lastSeq,
        whenDurable: () => this.#writeLoop.whenDurable(),
      });
      // What was replayed counts as written since the last checkpoint: a
      // start that read much of the log writes a new one soon.
      this.#checkpointer.replayed(recovered.replayedBytes);
    }
  }

  /**
   * Every live message, without its body, in seq order: what a restart
   * puts back in the queues. `visit` gets one object, changed in place.
   */
  forEachLive(visit: (message: LiveMessage) => void): void {
    this.#ledger.forEachLive(visit);
  }

  /** The newest ids each queue published (RecentIdLimits), oldest first. */
  recentIds(): RecentId[] {
    return this.#ledger.recentIds();
  }

  /** Declared queues and their settings as logged. */
  get queues(): ReadonlyMap<string, Record<string, unknown>> {
    return this.#ledger.queues;
  }

  /** The highest seq the log has named so far. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** The next message seq: above every seq the log has ever named. */
  allocateSeq(): number {
    return ++this.#lastSeq;
  }

  /**
   * Appends `records` in order and resolves once they are durable (or
   * written, with `sync: false`). Records are encoded before this returns,
   * so log order is call order. Every append that joins the same batch
   * gets the same promise; a failed batch rejects with
   * StoreUnavailableError and leaves nothing of itself in the log.
   *
   * `sync: false` (a queue in `os` mode) lets the batch be confirmed once
   * written, if nothing else in it asks for more; it is made durable by
   * the next batch that syncs, the next roll, or close.
   *
   * `unanswered: true` (with `sync: false`): nobody waits for the answer
   * (an AMQP ack), so the batch may wait to ride with the next synced one
   * rather than be written alone (hasRoom, in-flight.ts).
   *
   * No records: nothing to make durable, so it resolves at once (an empty
   * batch would never start, and its promise never settle).
   */
  append(
    records: readonly LogRecord[],
    { sync = true, unanswered = false }: { sync?: boolean; unanswered?: boolean } = {},
  ): Promise<void> {
    const failure = this.#writeLoop.failure;
    if (failure !== undefined) return Promise.reject(failure);
    if (this.#closing) {
      return Promise.reject(
        new StoreUnavailableError('the log store is closed'),
      );
    }
    if (records.length === 0) return Promise.resolve();
    try {
      return this.#writeLoop.gather(records, 0, sync, unanswered);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * The latest `published` records of live messages `seqs`, read back
   * from their segments (synchronously, unless read ahead: see
   * frame-reader.ts), in the same
   * order; undefined for a seq that is not live or cannot be read. The
   * record's state is as first published or last copied by compaction:
   * later `retried` and `moved` records are not applied.
   */
  readPublished(seqs: readonly number[]): (PublishedRecord | undefined)[] {
    const locations = seqs.map((seq) => this.#ledger.locate(seq));
    return this.#reader.read(locations, this.#readFailed);
  }

  /**
   * Starts reading the latest `published` records of `seqs` into memory
   * off the event loop, for a readPublished() of them soon (the next page
   * of a cold backlog: frame-reader.ts). Resolves when the reads end,
   * whatever came of them; a record not read ahead is read in line.
   */
  readAhead(seqs: readonly number[]): Promise<void> {
    if (this.#closing) return Promise.resolve();
    return this.#reader.readAhead(seqs.map((seq) => this.#ledger.locate(seq)));
  }

  /**
   * The same, but only the scheduling fields of each record (frames read
   * and checked whole, bodies not copied): for a restart (broker/rebuild.ts).
   */
  readPublishedHeads(seqs: readonly number[]): (PublishedHead | undefined)[] {
    const locations = seqs.map((seq) => this.#ledger.locate(seq));
    return this.#reader.readHeads(locations, this.#readFailed);
  }

  readonly #readFailed = (err: Error, location: FrameLocation): void => {
    this.#logger.error(
      { err, file: location.segment.path, offset: location.offset },
      'could not read a message back from the log',
    );
  };

  /**
   * Starts a scrub of every segment but the active one, in the background
   * (scrub.ts); false if one runs already or the store is closing. For an
   * operator who wants the whole log checked (`usher scrub`, the admin
   * API), say after a disk reported errors.
   */
  scrub(): boolean {
    if (this.#closing) return false;
    return this.#scrubber.start(this.#coveredBy(this.#writeLoop.active.id, 0));
  }

  /** Resolves once the running scrub, if any, is over. */
  whenScrubbed(): Promise<void> {
    return this.#scrubber.whenIdle();
  }

  /** Resolves once dead segments found so far are deleted. */
  whenDeleted(): Promise<void> {
    return this.#deadSegments.whenDone();
  }

  /** Resolves once the checkpoint being written, if any, is done. */
  whenCheckpointed(): Promise<void> {
    return this.#checkpointer?.whenIdle() ?? Promise.resolve();
  }

  // The segments before `segmentId`, whole, and that one up to `offset`:
  // what a checkpoint at that position covers.
  #coveredBy(segmentId: number, offset: number): ScrubTarget[] {
    const targets: ScrubTarget[] = [];
    for (const { id, path, size } of this.#segments) {
      if (id < segmentId) targets.push({ id, path, end: size });
      else if (id === segmentId && offset > 0) targets.push({ id, path, end: offset });
    }
    return targets;
  }

  /** Waits for every gathered batch to land, then closes the segment. */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    const writeLoop = this.#writeLoop;
    // Acks waiting to ride with a later batch go now (hasRoom, in-flight.ts).
    writeLoop.kickGathering();
    await this.#scrubber.stop();
    await writeLoop.idle();
    await this.whenDeleted();

    const active = writeLoop.active;
    const { fd, syncFds, dataSyncFds } = active;
    active.fd = -1;
    active.syncFds = [];
    active.dataSyncFds = [];
    try {
      if (writeLoop.unsynced && writeLoop.failure === undefined) {
        await this.#io.fdatasync(fd);
        writeLoop.unsynced = false;
      }
      if (!writeLoop.unsynced) writeLoop.wakeDurable();
      // A clean stop leaves a checkpoint of the end of the log, so the
      // next start replays nothing.
      if (writeLoop.failure === undefined) await this.#checkpointer?.finish();
    } finally {
      this.#reader.closeAll();
      for (const other of [...dataSyncFds, ...syncFds]) await this.#io.close(other).catch(noop);
      await this.#io.close(fd);
    }
  }

  /**
   * Tells the store that free disk space is below the broker's floor.
   * Compaction then starts once garbage exceeds two segments instead of
   * the live data, so that acks give space back even when a few old
   * messages pin the oldest segments (CASES.md C17).
   */
  setDiskLow(low: boolean): void {
    this.#compaction.setDiskLow(low);
  }

  stats(): LogStoreStats {
    return {
      segments: this.#segments.length,
      diskBytes: this.#diskBytes,
      liveMessages: this.#ledger.liveMessages,
      liveBytes: this.#ledger.liveBytes,
      corruptTails: this.#corruptTails,
      corruptRegions: this.#corruptRegions,
      missingSegments: this.#missingSegments,
      bytesWritten: this.#writeLoop.bytesWritten,
      batches: this.#writeLoop.batches,
      syncs: this.#writeLoop.syncs,
      syncsOverlapped: this.#writeLoop.syncsOverlapped,
      compactedMessages: this.#compaction.compactedMessages,
      framesReadAhead: this.#reader.framesReadAhead,
      framesReadInLine: this.#reader.framesReadInLine,
      stopped: this.#writeLoop.failure === undefined ? 0 : 1,
      replayedRecords: this.#replayedRecords,
      openedFromCheckpoint: this.#openedFromCheckpoint ? 1 : 0,
      scrubCorruptRegions: this.#scrubDamage.corruptRegions,
      scrubDamagedMessages: this.#scrubDamage.damagedMessages,
      ...(this.#checkpointer?.stats() ?? NO_CHECKPOINTS),
      ...this.#scrubber.stats(),
    };
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function noop(): void {}

const NO_CHECKPOINTS: CheckpointStats = {
  checkpointsWritten: 0,
  checkpointsFailed: 0,
  checkpointBytes: 0,
  checkpointBytesWritten: 0,
  checkpointMs: 0,
  checkpointMaxStallMs: 0,
};
