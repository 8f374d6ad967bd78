// Usher's write-ahead log: every durable change is a record appended to a
// segment file (layout in segment-file.ts, frames in codec.ts). Appends are
// group-committed, dead segments are deleted oldest first, and compaction
// copies the few long-lived messages forward so old segments can go.

import { mkdir } from 'node:fs/promises';
import { StoreUnavailableError, UsherError } from '../errors.js';
import { LatencyHistogram } from '../observe/latency.js';
import { type ActiveSegment, createSegment } from './active-segment.js';
import { Batch } from './batch.js';
import { WriteChain } from './batch-io.js';
import { Compaction } from './compaction.js';
import { DeadSegments, SHRINK_STEP_BYTES } from './dead-segments.js';
import { type InFlight, InFlightBatches } from './in-flight.js';
import {
  CHECKPOINTS_SUPPORTED,
  type CheckpointStats,
  Checkpointer,
} from './checkpoint.js';
import { encodeRecord } from './codec.js';
import { type PublishedHead } from './codec-decode.js';
import { FrameReader } from './frame-reader.js';
import { type StoreIo, nodeIo } from './io.js';
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
import { encodeSegmentHeader } from './segment-file.js';

// The store's options and figures live in log-store-types.ts; callers
// name them from here, beside the store.
export type {
  DamagedMessage,
  LogStoreOptions,
  LogStoreStats,
  StoreLogger,
} from './log-store-types.js';

const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

// A batch that has gathered this much starts at once, while the rest of
// the turn's appends gather behind it, so the disk writes and syncs one
// batch while the event loop encodes the next instead of each waiting
// for the other. (Under heavy load every publisher is answered in the
// same turn and publishes again in the same turn: without this, a turn
// encoded a whole 1.6 MiB batch with the disk idle.)
export const EARLY_START_BYTES = 512 * 1024;

// How long a batch nobody awaits (AMQP acks only) waits to ride with a
// synced batch before it is written alone. Acks arrive just after their
// deliveries, that is just after a synced batch landed, when nothing is
// in flight to wait for; at a steady rate a publish comes within this.
export const UNANSWERED_WAIT_MS = 5;

/** Bounds of batchTimes: a synced batch here takes 0.1-0.4 ms; a stall, hundreds. */
export const STORE_BATCH_BUCKETS_SECONDS = [
  0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
] as const;

/** What the write loop's wait for the oldest batch may end with instead. */
const ARRIVED = Symbol('arrived');

export class LogStore {
  readonly #dir: string;
  readonly #segmentBytes: number;
  readonly #sync: boolean;
  readonly #logger: StoreLogger;
  readonly #io: StoreIo;
  readonly #ledger: Ledger;
  readonly #reader = new FrameReader();

  /** Oldest first; the active segment is always last. */
  readonly #segments: SegmentState[];
  #active!: ActiveSegment;
  #nextSegmentId: number;
  #lastSeq: number;

  #gathering = new Batch();
  /** Batches to write again, oldest first: they were in flight behind one that failed. */
  #redo: Batch[] = [];
  /** Oldest first; they land in this order. */
  readonly #inFlight = new InFlightBatches();

  /**
   * Each batch's time from its write starting to its landing (written,
   * and synced if it asked to be): the disk's part of a durable publish's
   * latency, and where a stall of the disk shows (STORE_BATCH_BUCKETS).
   */
  readonly batchTimes = new LatencyHistogram(STORE_BATCH_BUCKETS_SECONDS);
  /** Where the next batch goes in the active segment: past those in flight. */
  #writeEnd = 0;
  readonly #chain: WriteChain;
  /** Wakes the write loop when an append joins while it waits on a batch. */
  #wakeOnArrival: (() => void) | undefined;
  /** While true, no batch may start from #startEarly (see there). */
  #recovering = false;
  /** The last roll failed; writing goes on in the full segment until a batch lands. */
  #rollFailed = false;
  #writing = false;
  #idleWaiters: Array<() => void> = [];
  /** Deletes dead segments beside the write loop (dead-segments.ts). */
  readonly #deadSegments: DeadSegments;
  /** Copies the oldest segment's live messages forward (compaction.ts). */
  readonly #compaction: Compaction;
  #closing = false;
  #closed: Promise<void> | undefined;
  /** Set when a failed batch could not be cut back: nothing is accepted. */
  #failure: StoreUnavailableError | undefined;
  /** The active segment holds batches written without an fdatasync. */
  #unsynced = false;
  /**
   * A batch was written without a sync since the last whole-file
   * fdatasync started: the next synced batch must fdatasync, as a
   * data-sync write covers its own bytes only.
   */
  #plainWrites = false;

  #diskBytes = 0;
  #corruptTails: number;
  #corruptRegions: number;
  #missingSegments: number;
  #bytesWritten = 0;
  #batches = 0;
  #syncs = 0;
  readonly #replayedRecords: number;
  readonly #openedFromCheckpoint: boolean;
  readonly #checkpointer: Checkpointer | undefined;
  readonly #scrubber: Scrubber;
  readonly #scrubDamage: ScrubDamage;
  #durableWaiters: Array<() => void> = [];

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
      store.#startSegment(await store.#createSegment());
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
    this.#dir = options.dir;
    this.#segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.#sync = options.sync ?? true;
    this.#logger = options.logger;
    this.#io = options.io ?? nodeIo;
    this.#chain = new WriteChain(this.#io);
    this.#ledger = ledger;
    this.#segments = recovered.segments;
    this.#nextSegmentId = recovered.lastSegmentId + 1;
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
      segmentBytes: this.#segmentBytes,
      snapshotMessage: options.snapshotMessage,
      diskBytes: () => this.#diskBytes,
      closing: () => this.#closing,
      append: (copies) => this.#gather(copies, copies.length, true),
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
        position: () => ({ segmentId: this.#active.id, offset: this.#active.size }),
        lastSeq: () => this.#lastSeq,
        whenDurable: () => this.#whenDurable(),
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
   * rather than be written alone (#hasRoom).
   *
   * No records: nothing to make durable, so it resolves at once (an empty
   * batch would never start, and its promise never settle).
   */
  append(
    records: readonly LogRecord[],
    { sync = true, unanswered = false }: { sync?: boolean; unanswered?: boolean } = {},
  ): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#closing) {
      return Promise.reject(
        new StoreUnavailableError('the log store is closed'),
      );
    }
    if (records.length === 0) return Promise.resolve();
    try {
      return this.#gather(records, 0, sync, unanswered);
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
    return this.#scrubber.start(this.#coveredBy(this.#active.id, 0));
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
    // Acks waiting to ride with a later batch go now (#hasRoom).
    if (!this.#gathering.isEmpty) this.#kick();
    await this.#scrubber.stop();
    await this.#idle();
    await this.whenDeleted();

    const { fd, syncFd, dataSyncFds } = this.#active;
    this.#active.fd = -1;
    this.#active.syncFd = -1;
    this.#active.dataSyncFds = [];
    try {
      if (this.#unsynced && this.#failure === undefined) {
        await this.#io.fdatasync(fd);
        this.#unsynced = false;
      }
      if (!this.#unsynced) this.#wakeDurable();
      // A clean stop leaves a checkpoint of the end of the log, so the
      // next start replays nothing.
      if (this.#failure === undefined) await this.#checkpointer?.finish();
    } finally {
      this.#reader.closeAll();
      for (const dataSyncFd of dataSyncFds) await this.#io.close(dataSyncFd).catch(noop);
      await this.#io.close(syncFd).catch(noop);
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
      bytesWritten: this.#bytesWritten,
      batches: this.#batches,
      syncs: this.#syncs,
      compactedMessages: this.#compaction.compactedMessages,
      framesReadAhead: this.#reader.framesReadAhead,
      framesReadInLine: this.#reader.framesReadInLine,
      stopped: this.#failure === undefined ? 0 : 1,
      replayedRecords: this.#replayedRecords,
      openedFromCheckpoint: this.#openedFromCheckpoint ? 1 : 0,
      scrubCorruptRegions: this.#scrubDamage.corruptRegions,
      scrubDamagedMessages: this.#scrubDamage.damagedMessages,
      ...(this.#checkpointer?.stats() ?? NO_CHECKPOINTS),
      ...this.#scrubber.stats(),
    };
  }

  // Encodes every record first (Batch.add), so one that cannot be encoded
  // (too large) throws here and nothing of its call joins the batch.
  #gather(
    records: readonly LogRecord[],
    copies: number,
    sync: boolean,
    unanswered = false,
  ): Promise<void> {
    const batch = this.#gathering;
    batch.add(records);
    batch.copies += copies;
    batch.sync ||= sync;
    batch.awaited ||= !unanswered;
    if (!batch.awaited && !batch.sync) this.#waitUnanswered(batch);
    if (batch.bytes >= EARLY_START_BYTES) this.#startEarly();
    else this.#kick();
    return batch.promise;
  }

  // Starts the gathering batch now if it has room in flight (if not, it
  // keeps gathering until one lands). Not while the loop
  // recovers from a failed write: it cuts the file back and queues the
  // batches behind to be written again, and a batch started meanwhile
  // could be written where the cut-back removes it, and still be
  // confirmed. (A segment being rolled is safe: #startBatches starts
  // nothing in a full segment.)
  #startEarly(): void {
    if (!this.#writing) {
      this.#writing = true;
      void this.#writeLoop();
    } else if (!this.#recovering) {
      this.#startBatches();
    }
  }

  // Starts the write loop unless it runs. Waiting one turn of the event
  // loop lets every append made by the I/O callbacks of this turn join
  // the first batch instead of it leaving with a single record. A loop
  // that runs is woken the same way if it has room for another batch.
  #kick(): void {
    if (this.#writing) {
      const wake = this.#wakeOnArrival;
      if (wake !== undefined && this.#hasRoom(this.#gathering)) {
        this.#wakeOnArrival = undefined;
        setImmediate(wake);
      }
      return;
    }
    this.#writing = true;
    setImmediate(() => void this.#writeLoop());
  }

  // Starts batches while there is room, then waits for the oldest in
  // flight (or for an append to start another) and lands it. Batches land
  // in the order they started, so appends resolve in call order.
  async #writeLoop(): Promise<void> {
    try {
      for (;;) {
        this.#startBatches();
        const oldest = this.#inFlight.oldest;
        if (oldest === undefined) {
          if (!this.#rollDue()) break;
          this.#rollFailed = !(await this.#roll());
          continue;
        }

        const woken = new Promise<typeof ARRIVED>((resolve) => {
          this.#wakeOnArrival = () => resolve(ARRIVED);
        });
        const outcome = await Promise.race([oldest.outcome, woken]);
        this.#wakeOnArrival = undefined;
        if (outcome === ARRIVED) continue;

        this.#inFlight.shift();
        if (outcome.ok) {
          this.#land(oldest, outcome.synced);
          this.#deadSegments.deleteSoon();
          this.#compaction.run();
          this.#afterCommitCheckpoint(oldest.batch.bytes);
        } else {
          await this.#recover(oldest, 'error' in outcome ? outcome.error : undefined);
        }
      }
    } catch (err) {
      // Only a bug gets here: I/O errors come back as outcomes.
      this.#enterFailed(
        new StoreUnavailableError(
          `the log store failed unexpectedly: ${describe(err)}`,
          err,
        ),
      );
    }

    if (this.#failure !== undefined) this.#rejectWaiting(this.#failure);
    this.#writing = false;
    for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  // A full segment is rolled once nothing is in flight; until then no new
  // batch starts in it (unless the roll failed: then writing goes on).
  #rollDue(): boolean {
    const full = this.#writeEnd >= this.#segmentBytes;
    return full && !this.#rollFailed && this.#failure === undefined;
  }

  // Batches to write again go first, then the gathering one, each once
  // it has room.
  #startBatches(): void {
    while (this.#failure === undefined && !this.#rollDue()) {
      const redo = this.#redo[0];
      const batch = redo ?? (this.#gathering.isEmpty ? undefined : this.#gathering);
      if (batch === undefined || !this.#hasRoom(batch)) return;
      if (batch === redo) this.#redo.shift();
      else this.#gathering = new Batch();

      const segment = this.#active;
      const position = this.#writeEnd;
      this.#writeEnd += batch.bytes;
      const synced = this.#sync && batch.sync;
      // One call instead of a write and an fdatasync (two trips to the
      // thread pool, two wake-ups of the loop) when the batch's own bytes
      // are all a sync must cover: every byte before it is synced, or
      // is in a synced batch in flight, which lands first.
      const dataSync = synced && !this.#plainWrites && segment.dataSyncFds.length > 0;
      if (synced && !dataSync) this.#plainWrites = false;
      if (!synced) this.#plainWrites = true;
      const syncFd = synced ? this.#inFlight.freeSyncFd(segment, dataSync) : null;
      const outcome = this.#chain.land(batch, {
        writeFd: segment.fd,
        syncFd: syncFd ?? segment.fd,
        position,
        sync: syncFd !== null,
        dataSync,
      });
      const startedAt = performance.now();
      this.#inFlight.add({ batch, segment, position, syncFd, outcome, startedAt });
    }
  }

  #hasRoom(batch: Batch): boolean {
    return this.#inFlight.hasRoom(batch, this.#sync, this.#closing);
  }

  // Once per batch: when its wait is over, it may start.
  #waitUnanswered(batch: Batch): void {
    if (batch.waitTimer !== undefined || !this.#sync) return;
    // Not unref'd: close() starts a waiting batch itself, and until
    // then the timer is what starts it.
    batch.waitTimer = setTimeout(() => {
      batch.waited = true;
      if (this.#gathering === batch) this.#kick();
    }, UNANSWERED_WAIT_MS);
  }

  // The batch is written (and synced if asked): account for it and answer.
  #land(landed: InFlight, synced: boolean): void {
    const { batch, segment, position } = landed;
    // A sync covers every write before it: the ones of earlier batches
    // returned before this batch's write started.
    if (synced) this.#syncs++;
    this.batchTimes.observeMs(performance.now() - landed.startedAt);
    this.#unsynced = !synced;
    this.#rollFailed = false;

    segment.size += batch.bytes;
    this.#diskBytes += batch.bytes;
    this.#bytesWritten += batch.bytes;
    this.#batches++;
    let offset = position;
    for (let i = 0; i < batch.records.length; i++) {
      this.#ledger.apply(batch.records[i], segment, batch.frameBytes[i], offset, batch.ids, i);
      offset += batch.frameBytes[i];
    }
    if (batch.copies > 0) this.#compaction.landed(batch.copies);
    batch.resolve();
  }

  // The oldest batch in flight failed. The ones behind it were written
  // after it (or skipped): once their I/O is over, the file is cut back to
  // where the failed batch began, it alone is rejected, and the others
  // are written again from there.
  async #recover(failed: InFlight, cause: unknown): Promise<void> {
    this.#recovering = true;
    try {
      const behind = this.#inFlight.takeAll();
      await Promise.all(behind.map((entry) => entry.outcome));
      this.#chain.reset();
      // What the failed batch's cut-back leaves unsynced is not known
      // here: the next synced batch fdatasyncs the whole file.
      this.#plainWrites = true;
      this.#writeEnd = failed.position;
      for (const entry of behind) entry.batch.waited = true;
      this.#redo.unshift(...behind.map((entry) => entry.batch));
      await this.#rollBack(
        failed,
        cause ?? new Error('an earlier write failed'),
      );
    } finally {
      this.#recovering = false;
    }
  }

  // Once the store has stopped, nothing waiting will ever be written.
  #rejectWaiting(failure: StoreUnavailableError): void {
    const waiting = [...this.#redo.splice(0), ...this.#inFlight.takeAll().map((e) => e.batch)];
    if (!this.#gathering.isEmpty) {
      waiting.push(this.#gathering);
      this.#gathering = new Batch();
    }
    for (const batch of waiting) batch.reject(failure);
  }

  // A failed write may have left part of the batch in the file. Cutting
  // the file back to where the batch began keeps the log free of gaps and
  // garbage, so the next batch can go in the same place. If even that
  // fails we no longer know what the file holds, and stop accepting.
  async #rollBack(failed: InFlight, cause: unknown): Promise<void> {
    const { batch, segment, position, syncFd } = failed;
    if (batch.copies > 0) this.#compaction.failed();
    try {
      await this.#io.ftruncate(segment.fd, position);
      if (syncFd !== null) {
        // Through the descriptor the batch synced through: a writeback
        // error is reported once to each open descriptor of the file,
        // and this one has taken it, so this sync fails only on a new
        // error. (Through another, it would report the old one and stop
        // the store: always so after a failed data-sync write.)
        await this.#io.fdatasync(syncFd);
        // The other descriptors may still hold the failed batch's error
        // for their next sync, which would fail a batch that did nothing
        // wrong. Nothing was written since the sync just above
        // succeeded, so an error here can only be that old one: taken
        // and dropped.
        for (const fd of [segment.fd, segment.syncFd, ...segment.dataSyncFds]) {
          if (fd !== syncFd) await this.#io.fdatasync(fd).catch(noop);
        }
      }
    } catch (truncateErr) {
      this.#enterFailed(
        new StoreUnavailableError(
          `writing to segment "${segment.path}" failed ` +
            `(${describe(cause)}) and cutting it back to ${position} bytes ` +
            `failed too (${describe(truncateErr)}); the log store is stopped`,
          truncateErr,
        ),
      );
      batch.reject(this.#failure!);
      return;
    }

    this.#logger.error(
      { err: cause, file: segment.path, offset: position, bytes: batch.bytes },
      'log batch failed',
    );
    batch.reject(
      new StoreUnavailableError(
        `writing ${batch.records.length} records to segment ` +
          `"${segment.path}" failed: ${describe(cause)}`,
        cause,
      ),
    );
  }

  #enterFailed(failure: StoreUnavailableError): void {
    this.#failure = failure;
    this.#logger.error({ err: failure }, 'log store stopped');
  }

  // Once a batch has landed the ledger holds exactly the log up to the
  // landed end of the active segment (a batch still in flight is not in
  // it yet): a checkpoint may begin here (checkpoint.ts).
  #afterCommitCheckpoint(bytes: number): void {
    if (!this.#unsynced || !this.#sync) this.#wakeDurable();
    this.#checkpointer?.wrote(bytes);
  }

  // Resolves once every record the ledger holds is on disk. In `os` mode
  // that waits for the next synced batch, which it asks for.
  #whenDurable(): Promise<void> {
    if (!this.#unsynced || !this.#sync) return Promise.resolve();
    this.#gathering.sync = true;
    return new Promise((resolve) => this.#durableWaiters.push(resolve));
  }

  #wakeDurable(): void {
    for (const wake of this.#durableWaiters.splice(0)) wake();
  }

  // If the new segment cannot be made (a full disk, say), writing goes on
  // in the current one and the roll is tried again after the next batch.
  // Called only while no batch is in flight. Resolves false if it failed.
  async #roll(): Promise<boolean> {
    let next: ActiveSegment;
    try {
      next = await this.#createSegment();
    } catch (err) {
      this.#logger.error(
        { err, file: this.#active.path, bytes: this.#active.size },
        'could not start a new segment; writing on in the current one',
      );
      return false;
    }

    const previous = this.#active;
    // Batches confirmed without a sync must not stay unsynced in a file
    // no later fdatasync will touch.
    if (this.#unsynced) {
      try {
        await this.#io.fdatasync(previous.fd);
        this.#unsynced = false;
      } catch (err) {
        this.#logger.warn({ err, file: previous.path }, 'syncing segment before roll failed');
      }
    }
    this.#startSegment(next);
    try {
      for (const fd of previous.dataSyncFds) await this.#io.close(fd);
      await this.#io.close(previous.syncFd);
      await this.#io.close(previous.fd);
    } catch (err) {
      this.#logger.warn({ err, file: previous.path }, 'closing segment failed');
    }
    previous.fd = -1;
    previous.syncFd = -1;
    previous.dataSyncFds = [];
    this.#deadSegments.deleteSoon();
    return true;
  }

  // A new segment starts with a declaration of every live queue, so the
  // queues outlive the deletion of the segments that declared them.
  #createSegment(): Promise<ActiveSegment> {
    const frames = [encodeSegmentHeader(this.#lastSeq)];
    for (const [name, settings] of this.#ledger.queues) {
      frames.push(encodeRecord({ type: 'queue-declared', name, settings }));
    }
    return createSegment(this.#io, this.#dir, this.#nextSegmentId, frames, (next) => {
      this.#nextSegmentId = next;
    });
  }

  #startSegment(segment: ActiveSegment): void {
    this.#active = segment;
    // Its header was synced as it was made, and nothing else is in it.
    this.#plainWrites = false;
    this.#writeEnd = segment.size;
    this.#segments.push(segment);
    this.#diskBytes += segment.size;
  }

  #idle(): Promise<void> {
    if (!this.#writing) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
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
