// The log store's write loop: everything between an append and its
// answer. Appends gather into a batch (batch.ts); batches start while
// there is room in flight (in-flight.ts), their I/O goes out in order
// (batch-io.ts), and they land in the order they started, into the
// ledger. A failed batch is cut back and the ones behind it are written
// again; a full segment is rolled between batches. Apart from
// log-store.ts, which opens the log, reads it back and closes it, so
// that the group commit reads as one piece.

import { StoreUnavailableError } from '../errors.js';
import type { LatencyHistogram } from '../observe/latency.js';
import { type ActiveSegment, createSegment } from './active-segment.js';
import { Batch } from './batch.js';
import { WriteChain } from './batch-io.js';
import { encodeRecord } from './codec.js';
import type { Compaction } from './compaction.js';
import type { DeadSegments } from './dead-segments.js';
import { type InFlight, InFlightBatches } from './in-flight.js';
import type { StoreIo } from './io.js';
import type { Ledger, SegmentState } from './ledger.js';
import type { StoreLogger } from './log-store-types.js';
import type { LogRecord } from './records.js';
import { encodeSegmentHeader } from './segment-file.js';

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

/** What the write loop's wait for the oldest batch may end with instead. */
const ARRIVED = Symbol('arrived');

/** What the write loop takes from the store (log-store.ts). */
export interface WriteLoopOptions {
  /** Directory of segment files. */
  dir: string;
  io: StoreIo;
  logger: StoreLogger;
  /** LogStoreOptions.sync: whether a batch that asks for it is fdatasynced. */
  sync: boolean;
  /** LogStoreOptions.syncsInFlight: synced batches in flight at once. */
  syncsInFlight: number;
  /** Start a new segment once a batch takes the active one past this. */
  segmentBytes: number;
  /** Each landed batch's records are applied to it. */
  ledger: Ledger;
  /** The store's segments, oldest first: each new one is pushed. Shared, not copied. */
  segments: SegmentState[];
  /** The id the next segment made takes. */
  nextSegmentId: number;
  /** LogStore.batchTimes: each landed batch's time goes in. */
  batchTimes: LatencyHistogram;
  /** Told after each landing and each roll that dead segments may go. */
  deadSegments: DeadSegments;
  /** Runs a round after each landing; told how its batches end. */
  compaction: Compaction;
  /** The highest seq the log has named, for a new segment's header. */
  lastSeq(): number;
  /** The store is closing: a batch nobody awaits waits no more. */
  closing(): boolean;
  /** The segment files grew by `bytes`: a batch landed or a segment was made. */
  grew(bytes: number): void;
  /** A batch of `bytes` landed (Checkpointer.wrote). */
  wrote(bytes: number): void;
}

export class WriteLoop {
  readonly #options: WriteLoopOptions;
  readonly #dir: string;
  readonly #segmentBytes: number;
  readonly #sync: boolean;
  readonly #logger: StoreLogger;
  readonly #io: StoreIo;
  readonly #ledger: Ledger;

  /** Oldest first; the active segment is always last. */
  readonly #segments: SegmentState[];
  #active!: ActiveSegment;
  #nextSegmentId: number;

  #gathering = new Batch();
  /** Batches to write again, oldest first: they were in flight behind one that failed. */
  #redo: Batch[] = [];
  /** Oldest first; they land in this order. */
  readonly #inFlight: InFlightBatches;

  /** LogStore.batchTimes (see there). */
  readonly #batchTimes: LatencyHistogram;
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
  readonly #deadSegments: DeadSegments;
  readonly #compaction: Compaction;
  /** Set when a failed batch could not be cut back: nothing is accepted. */
  #failure: StoreUnavailableError | undefined;
  /**
   * The active segment holds batches written without an fdatasync (the
   * next roll, or the store's close, syncs them).
   */
  unsynced = false;
  /**
   * A batch was written without a sync since the last whole-file
   * fdatasync started: the next synced batch must fdatasync, as a
   * data-sync write covers its own bytes only.
   */
  #plainWrites = false;
  #durableWaiters: Array<() => void> = [];

  /** Bytes of batches that landed, and how many did: LogStore.stats(). */
  bytesWritten = 0;
  batches = 0;
  /** Synced batches that landed: an fdatasync or an O_DSYNC write each. */
  syncs = 0;
  /**
   * Synced batches that landed having started while another synced batch
   * was in flight: how often the log overlaps its syncs. Few against `syncs` while appends
   * wait on a sync means the writers, not the disk, set the pace (a
   * publisher that sends its next publishes only once confirmed).
   */
  syncsOverlapped = 0;

  constructor(options: WriteLoopOptions) {
    this.#options = options;
    this.#dir = options.dir;
    this.#segmentBytes = options.segmentBytes;
    this.#sync = options.sync;
    this.#logger = options.logger;
    this.#io = options.io;
    this.#chain = new WriteChain(this.#io);
    this.#inFlight = new InFlightBatches(options.syncsInFlight, EARLY_START_BYTES);
    this.#ledger = options.ledger;
    this.#segments = options.segments;
    this.#nextSegmentId = options.nextSegmentId;
    this.#batchTimes = options.batchTimes;
    this.#deadSegments = options.deadSegments;
    this.#compaction = options.compaction;
  }

  /** The segment batches are written to: the last of the store's. */
  get active(): ActiveSegment {
    return this.#active;
  }

  /** Set once a failed batch could not be cut back: every append rejects. */
  get failure(): StoreUnavailableError | undefined {
    return this.#failure;
  }

  // Encodes every record first (Batch.add), so one that cannot be encoded
  // (too large) throws here and nothing of its call joins the batch.
  gather(
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
      const overlapped = syncFd !== null && this.#inFlight.syncing > 0;
      const outcome = this.#chain.land(batch, {
        writeFd: segment.fd,
        syncFd: syncFd ?? segment.fd,
        position,
        sync: syncFd !== null,
        dataSync,
      });
      const startedAt = performance.now();
      this.#inFlight.add({ batch, segment, position, syncFd, outcome, startedAt, overlapped });
    }
  }

  #hasRoom(batch: Batch): boolean {
    return this.#inFlight.hasRoom(batch, this.#sync, this.#options.closing());
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
    if (synced) this.syncs++;
    // Counted as it lands, as `syncs` is: a batch written again after a
    // failure counts once.
    if (synced && landed.overlapped) this.syncsOverlapped++;
    this.#batchTimes.observeMs(performance.now() - landed.startedAt);
    this.unsynced = !synced;
    this.#rollFailed = false;

    segment.size += batch.bytes;
    this.#options.grew(batch.bytes);
    this.bytesWritten += batch.bytes;
    this.batches++;
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
        for (const fd of [segment.fd, ...segment.syncFds, ...segment.dataSyncFds]) {
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
    if (!this.unsynced || !this.#sync) this.wakeDurable();
    this.#options.wrote(bytes);
  }

  // Resolves once every record the ledger holds is on disk. In `os` mode
  // that waits for the next synced batch, which it asks for.
  whenDurable(): Promise<void> {
    if (!this.unsynced || !this.#sync) return Promise.resolve();
    this.#gathering.sync = true;
    return new Promise((resolve) => this.#durableWaiters.push(resolve));
  }

  wakeDurable(): void {
    for (const wake of this.#durableWaiters.splice(0)) wake();
  }

  // If the new segment cannot be made (a full disk, say), writing goes on
  // in the current one and the roll is tried again after the next batch.
  // Called only while no batch is in flight. Resolves false if it failed.
  async #roll(): Promise<boolean> {
    let next: ActiveSegment;
    try {
      next = await this.createSegment();
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
    if (this.unsynced) {
      try {
        await this.#io.fdatasync(previous.fd);
        this.unsynced = false;
      } catch (err) {
        // The OS reports a writeback error once: written records may be
        // lost, no later sync would say so, and the next synced batch, in
        // the new segment, would let a checkpoint name them as on disk.
        // Stopped, as after a failed cut-back (it only warned before).
        await closeSegment(this.#io, next);
        this.#enterFailed(
          new StoreUnavailableError(
            `syncing segment "${previous.path}" before starting the next failed ` +
              `(${describe(err)}); the log store is stopped`,
            err,
          ),
        );
        return false;
      }
    }
    this.startSegment(next);
    try {
      for (const fd of [...previous.dataSyncFds, ...previous.syncFds]) await this.#io.close(fd);
      await this.#io.close(previous.fd);
    } catch (err) {
      this.#logger.warn({ err, file: previous.path }, 'closing segment failed');
    }
    previous.fd = -1;
    previous.syncFds = [];
    previous.dataSyncFds = [];
    this.#deadSegments.deleteSoon();
    return true;
  }

  // A new segment starts with a declaration of every live queue, so the
  // queues outlive the deletion of the segments that declared them.
  createSegment(): Promise<ActiveSegment> {
    const frames = [encodeSegmentHeader(this.#options.lastSeq())];
    for (const [name, settings] of this.#ledger.queues) {
      frames.push(encodeRecord({ type: 'queue-declared', name, settings }));
    }
    const useId = (next: number) => {
      this.#nextSegmentId = next;
    };
    return createSegment(
      this.#io, this.#dir, this.#nextSegmentId, frames, useId, this.#options.syncsInFlight);
  }

  startSegment(segment: ActiveSegment): void {
    this.#active = segment;
    // Its header was synced as it was made, and nothing else is in it.
    this.#plainWrites = false;
    this.#writeEnd = segment.size;
    this.#segments.push(segment);
    this.#options.grew(segment.size);
  }

  idle(): Promise<void> {
    if (!this.#writing) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * At close: the gathering batch, if any, goes on its way; acks waiting
   * to ride with a later batch too, as the store is closing (hasRoom,
   * in-flight.ts).
   */
  kickGathering(): void {
    if (!this.#gathering.isEmpty) this.#kick();
  }
}

/** Closes the descriptors of a segment never written to, whatever fails. */
async function closeSegment(io: StoreIo, segment: ActiveSegment): Promise<void> {
  for (const fd of [...segment.dataSyncFds, ...segment.syncFds, segment.fd]) {
    await io.close(fd).catch(noop);
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function noop(): void {}
