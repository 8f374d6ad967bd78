// The log's batches whose I/O has started, oldest first, and the rules for
// whether another may start beside them (write-loop.ts starts them and
// lands them in this order).

import type { ActiveSegment } from './active-segment.js';
import type { Batch } from './batch.js';
import type { Outcome } from './batch-io.js';

// Batches written and syncing at once, by default. A publish that arrives
// while one batch waits for its fdatasync then starts its own at once,
// instead of waiting for that one to land and then for its own: the
// latency tail of a durable publish is about one fdatasync rather than
// two. Each sync in flight has a descriptor of its own (batch-io.ts).
//
// Four, but only batches that filled up (EARLY_START_BYTES, passed in as
// `fullBatchBytes`) take the last two. When the disk is the limit, ext4
// commits the size changes of appends that sync together in one journal
// transaction, so more at once write more a second: 16 KiB durable
// publishes (bench:amqp, one publisher, 256 confirms in flight,
// 2026-12-06) went from 19.1-22.4k msg/s in seven runs (median 20.1k,
// batches of about 1 MiB) to 19.0-27.8k in eleven (median 23.4k, about
// 650 KiB) with four; three fell between. For small batches four showed
// no gain beyond the runs' spread (16 B and 464 B publishes, six
// interleaved runs each: medians 67.4k against 69.6k, 77.1k against
// 78.3k), nor in the p99 at a steady 5,000 msg/s (pooled p99s of four
// latency runs each way: medians 4.03 against 4.02 ms), so they keep
// two. libuv's pool has four threads; a fifth sync would only queue
// there.
export const DEFAULT_SYNCS_IN_FLIGHT = 4;
const SMALL_BATCH_SYNCS = 2;

// Batches in flight at once beyond those syncing. A batch that asks for
// no sync (AMQP acks only: their `settled` records need none) takes no
// sync slot, and starts only while no synced batch is in flight
// (hasRoom): a publish arriving behind it starts its own batch at once.
// When an ack batch took a sync slot, a publish arriving while one batch
// synced and an ack batch was in flight waited for the sync to land
// before its own could start: two fdatasyncs in its latency. At 5,000
// msg/s durable with a consumer acking each message, an ack batch held
// the slot in a third to two thirds of the moments a publish found both
// slots full (with two sync slots).
const UNSYNCED_IN_FLIGHT = 2;

/** A batch whose I/O has started, at `position` in `segment`. */
export interface InFlight {
  batch: Batch;
  segment: ActiveSegment;
  position: number;
  /** The descriptor its fdatasync goes through; null: it is not synced. */
  syncFd: number | null;
  outcome: Promise<Outcome>;
  /** performance.now() as its write began, for the store's batchTimes. */
  startedAt: number;
  /** Started while another synced batch was in flight (syncsOverlapped). */
  overlapped: boolean;
}

export class InFlightBatches {
  #entries: InFlight[] = [];

  /**
   * `maxSyncing`: synced batches in flight at once (DEFAULT_SYNCS_IN_FLIGHT);
   * a batch under `fullBatchBytes` starts only while fewer than
   * SMALL_BATCH_SYNCS (or `maxSyncing`, if fewer) sync.
   */
  constructor(
    private readonly maxSyncing: number,
    private readonly fullBatchBytes: number,
  ) {}

  get oldest(): InFlight | undefined {
    return this.#entries[0];
  }

  add(entry: InFlight): void {
    this.#entries.push(entry);
  }

  /** Synced batches in flight. */
  get syncing(): number {
    let count = 0;
    for (const entry of this.#entries) if (entry.syncFd !== null) count++;
    return count;
  }

  /** Takes the oldest out, once it has landed. */
  shift(): void {
    this.#entries.shift();
  }

  /** Takes every one out, oldest first. */
  takeAll(): InFlight[] {
    return this.#entries.splice(0);
  }

  /**
   * A slot in flight, and one of the sync slots if `batch` is synced
   * (`storeSyncs`: the store syncs at all): any of `maxSyncing` for a
   * batch that filled up, one of the first SMALL_BATCH_SYNCS for others.
   * A batch that needs no sync and that nobody awaits (AMQP acks only)
   * gathers on until its wait is over (`batch.waited`,
   * UNANSWERED_WAIT_MS) or the store closes, and while a synced one is in
   * flight: a synced batch usually takes it along. Started alone, it
   * would cost a write of its own, and the synced batch after it an
   * fdatasync instead of a data-sync write.
   */
  hasRoom(batch: Batch, storeSyncs: boolean, closing: boolean): boolean {
    if (this.#entries.length >= this.maxSyncing + UNSYNCED_IN_FLIGHT) return false;
    const syncing = this.syncing;
    if (!(storeSyncs && batch.sync)) {
      if (batch.awaited || !storeSyncs) return true;
      return syncing === 0 && (batch.waited || closing);
    }
    const full = batch.bytes >= this.fullBatchBytes;
    return syncing < (full ? this.maxSyncing : Math.min(this.maxSyncing, SMALL_BATCH_SYNCS));
  }

  /**
   * A descriptor no sync in flight goes through: two syncs at once never
   * share one (batch-io.ts). Every batch in flight is in `segment`, the
   * active one: a roll waits until none is. The segment has one of each
   * kind per sync slot (active-segment.ts), so one is always free.
   */
  freeSyncFd(segment: ActiveSegment, dataSync: boolean): number {
    const candidates = dataSync ? segment.dataSyncFds : [segment.fd, ...segment.syncFds];
    for (const fd of candidates) {
      if (!this.#entries.some((entry) => entry.syncFd === fd)) return fd;
    }
    throw new Error(`no free descriptor among ${candidates.length} to sync through`);
  }
}
