// The batches of the log store's group commit and the I/O that lands them.
// Several synced batches are in flight at once (in-flight.ts), and a
// few that need no sync beside them: while one waits for its fdatasync,
// the next is written and synced at once rather than waiting for the
// first to land. Their writes still go out one after the other, each
// starting once the one before it has returned, so the file never holds
// a later batch beside a hole where an earlier one failed; a batch
// written and synced in one call is the exception (see landDataSync).

import type { Batch } from './batch.js';
import type { StoreIo } from './io.js';

/**
 * How a batch's I/O ended. `skipped`: an earlier batch's write failed, so
 * this one was not written at all (it is written again after the cut-back).
 */
export type Outcome =
  | { ok: true; synced: boolean }
  | { ok: false; error: unknown }
  | { ok: false; skipped: true };

/** The descriptors a batch's I/O goes through. */
export interface BatchTarget {
  /** Writes go through this one. */
  writeFd: number;
  /**
   * The fdatasync goes through this one. Batches in flight together
   * sync through descriptors of their own: Linux reports a writeback
   * error once per open file description, so on one shared descriptor
   * the later sync could take the error that belongs to the earlier
   * batch, and the earlier one would be confirmed though its data is lost.
   */
  syncFd: number;
  position: number;
  /** fdatasync after the write; false: written to the OS only. */
  sync: boolean;
  /**
   * With `sync`: `syncFd` was opened with StoreIo.openDataSync, and the
   * write goes through it, syncing as it writes: no fdatasync follows.
   */
  dataSync: boolean;
}

/** Starts each batch's write once the previous one's has returned. */
export class WriteChain {
  /** Whether the last write started so far succeeded (once it returns). */
  #last: Promise<boolean> = Promise.resolve(true);

  constructor(private readonly io: StoreIo) {}

  /** Writes `batch` (after the writes before it), then syncs it; never rejects. */
  land(batch: Batch, target: BatchTarget): Promise<Outcome> {
    if (target.sync && target.dataSync) return this.#landDataSync(batch, target);
    const written = this.#last.then((previousOk) =>
      previousOk ? this.#write(batch, target.writeFd, target.position) : SKIPPED,
    );
    this.#last = written.then((outcome) => outcome.ok);
    return written.then((outcome) =>
      outcome.ok && target.sync ? this.#sync(target.syncFd) : outcome,
    );
  }

  /** After a cut-back: the next write starts afresh. */
  reset(): void {
    this.#last = Promise.resolve(true);
  }

  // TODO(#4): these writes, on libuv's threads, are 11-16 µs of a durable
  // 16 KiB publish's 37-40 (per-thread CPU, /proc/PID/task, load 7-9,
  // 2026-12-05), almost all in the kernel: page cache and ext4
  // writeback of 4 pages a message. Untried: O_DIRECT, segments
  // allocated ahead. Measured for the latter (2026-12-06, this ext4 on
  // virtio, one O_DSYNC writer alone): writing over blocks written and
  // synced before took 270-290 µs for 941 KiB, 120-130 µs for 64 KiB and
  // 90 µs for 2-16 KiB; appending, as the log does, 540-660, 220-230 and
  // 140-150 µs; extending the file first with ftruncate (holes) gained
  // nothing. Getting there means a zero-filled (or recycled, with frames
  // that name their segment) file ahead of each roll, and recovery,
  // scrub and the checkpoint's measuring telling its blank tail from a
  // torn one; zero-filling costs the kernel a copy like the data's.
  // Tried (2026-12-06, a prototype not kept): a zero-filled 64 MiB spare
  // made off the loop after each roll and renamed in at the next. The
  // 16 KiB durable publish fell from 15.5-16.8k to 12.0k msg/s and the
  // broker's CPU rose from 57-62 to 88-89 µs a message (two interleaved
  // pairs, load from other work): at that rate the filling runs while
  // publishing and doubles what the disk is written. Only recycling
  // dead segments would gain, and only where some are dead.
  //
  // One call writes and syncs. It starts once the writes before it have
  // returned, like any, but the writes after it do not wait for it: it
  // returns only once synced, and waiting would put its whole sync
  // before the next batch's write, two syncs in that batch's latency
  // again. So if it fails, batches behind it may lie in the file past
  // it; the store cuts them back with it and writes them again
  // (write-loop.ts #recover), as after a failed fdatasync.
  #landDataSync(batch: Batch, target: BatchTarget): Promise<Outcome> {
    return this.#last.then(async (previousOk) => {
      if (!previousOk) return SKIPPED;
      const outcome = await this.#write(batch, target.syncFd, target.position);
      return outcome.ok ? SYNCED : outcome;
    });
  }

  async #write(batch: Batch, fd: number, position: number): Promise<Outcome> {
    try {
      const written = await this.io.writev(fd, batch.buffers(), position);
      if (written !== batch.bytes) {
        throw new Error(`short write: ${written} of ${batch.bytes} bytes`);
      }
      return { ok: true, synced: false };
    } catch (error) {
      return { ok: false, error };
    }
  }

  async #sync(fd: number): Promise<Outcome> {
    try {
      await this.io.fdatasync(fd);
      return { ok: true, synced: true };
    } catch (error) {
      return { ok: false, error };
    }
  }
}

const SKIPPED: Outcome = { ok: false, skipped: true };
const SYNCED: Outcome = { ok: true, synced: true };
