// The log's batches whose I/O has started, oldest first, and the rules for
// whether another may start beside them (write-loop.ts starts them and
// lands them in this order).

import type { ActiveSegment } from './active-segment.js';
import type { Batch } from './batch.js';
import type { Outcome } from './batch-io.js';

// Batches written and syncing at once. A publish that arrives while one
// batch waits for its fdatasync then starts its own at once, instead of
// waiting for that one to land and then for its own: the latency tail of
// a durable publish is about one fdatasync rather than two. Two, because
// the segment has two descriptors to sync through (see batch-io.ts).
const MAX_SYNCING = 2;

// Batches in flight at once, syncing or not. A batch that asks for no
// sync (AMQP acks only: their `settled` records need none) takes no sync
// slot, and starts only while no synced batch is in flight (hasRoom): a
// publish arriving behind it starts its own batch at once. When an ack
// batch took a sync slot, a publish arriving while one batch synced and
// an ack batch was in flight waited for the sync to land before its own
// could start: two fdatasyncs in its latency. At 5,000 msg/s durable
// with a consumer acking each message, an ack batch held the slot in a
// third to two thirds of the moments a publish found both slots full.
const MAX_IN_FLIGHT = 4;

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
}

export class InFlightBatches {
  #entries: InFlight[] = [];

  get oldest(): InFlight | undefined {
    return this.#entries[0];
  }

  add(entry: InFlight): void {
    this.#entries.push(entry);
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
   * A slot in flight, and one of the MAX_SYNCING if `batch` is synced
   * (`storeSyncs`: the store syncs at all). A batch that needs no sync
   * and that nobody awaits (AMQP acks only) gathers on until its wait is
   * over (`batch.waited`, UNANSWERED_WAIT_MS) or the store closes, and
   * while a synced one is in flight: a synced batch usually takes it
   * along. Started alone, it would cost a write of its own, and the
   * synced batch after it an fdatasync instead of a data-sync write.
   */
  hasRoom(batch: Batch, storeSyncs: boolean, closing: boolean): boolean {
    if (this.#entries.length >= MAX_IN_FLIGHT) return false;
    let syncing = 0;
    for (const entry of this.#entries) if (entry.syncFd !== null) syncing++;
    if (!(storeSyncs && batch.sync)) {
      if (batch.awaited || !storeSyncs) return true;
      return syncing === 0 && (batch.waited || closing);
    }
    return syncing < MAX_SYNCING;
  }

  /**
   * The descriptor no sync in flight goes through: two syncs at once
   * never share one (batch-io.ts). Every batch in flight is in `segment`,
   * the active one: a roll waits until none is.
   */
  freeSyncFd(segment: ActiveSegment, dataSync: boolean): number {
    const [first, second] = dataSync ? segment.dataSyncFds : [segment.fd, segment.syncFd];
    const taken = this.#entries.some((entry) => entry.syncFd === first);
    return taken ? second : first;
  }
}
