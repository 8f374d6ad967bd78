// Deleting the log's dead segments: those that hold no live message,
// oldest first. It runs beside the write loop rather than in it:
// unlinking a full 64 MB segment takes 17-23 ms on this machine's ext4
// and the directory's fsync up to 8 more, and every batch used to wait
// for them (issue #4: the p99.9 at 5,000 msg/s).
//
// Segments are deleted only as a prefix, up to the first one that still
// holds a live message. A segment with no live messages may still hold
// `settled` records for messages published in an older segment: deleting
// it while the older one stays would make those messages live again at
// the next replay. Once every older segment is gone, its settled records
// refer to nothing and it can go too.
//
// A segment bigger than SHRINK_STEP_BYTES is not unlinked whole. On this
// machine's ext4, mounted with `discard`, the blocks a deletion frees
// are discarded at the next journal commit, and the log's next fdatasync
// that commits waits for all of them: unlinking a full 64 MB segment
// made one batch take 25-50 ms, and the AMQP latency bench's round that
// held it had a p99 of 5.7-6.5 ms against 2.7-2.8 for the others (issue
// #4). So such a segment is first renamed out of the log (RETIRED_SUFFIX)
// and the rename made durable; then it is cut from its end a step at a
// time, with a pause between steps so that each step's discards ride on
// a commit of their own, and the empty file is unlinked (the same round:
// p99 3.2 ms). The rename comes first because a segment cut short under
// its own name would, after a crash, replay the publishes at its start
// without the settles cut from its end: those messages would come back.
// Recovery removes a retired file a crash left behind, unread.

import { setTimeout as sleep } from 'node:timers/promises';

import type { StoreIo } from './io.js';
import type { SegmentState } from './ledger.js';
import type { StoreLogger } from './log-store-types.js';
import { RETIRED_SUFFIX, isGone } from './segment-file.js';

/** Segments bigger than this are cut in steps of this size before the unlink (by default). */
export const SHRINK_STEP_BYTES = 4 * 1024 * 1024;
/** Between steps, so that the next commit carries one step's discards, not all. */
const SHRINK_PAUSE_MS = 5;

export interface DeadSegmentsOptions {
  dir: string;
  io: StoreIo;
  logger: StoreLogger;
  /** Segments bigger than this are renamed and cut in steps of it (SHRINK_STEP_BYTES). */
  shrinkStepBytes: number;
  /** The store's segments, oldest first, the active one last: shared, not copied. */
  segments: SegmentState[];
  /** Called before a segment's file is removed (its reads are forgotten). */
  forget(segment: SegmentState): void;
  /** Called once a segment is gone from disk and from `segments`. */
  dropped(segment: SegmentState): void;
}

export class DeadSegments {
  #running: Promise<void> | undefined;
  #again = false;

  constructor(private readonly options: DeadSegmentsOptions) {}

  /**
   * Starts deleting the dead prefix, if there is one, without waiting.
   * One deletion runs at a time; a call meanwhile has it look again.
   */
  deleteSoon(): void {
    const { segments } = this.options;
    if (segments.length < 2 || segments[0].live > 0) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#running = (async () => {
      try {
        do {
          this.#again = false;
          await this.deleteNow();
        } while (this.#again);
      } catch (err) {
        // Only a bug gets here (failed unlinks are logged and retried):
        // nobody awaits this, and a rejection would end the process.
        this.options.logger.error({ err }, 'deleting dead segments failed');
      } finally {
        this.#running = undefined;
      }
    })();
  }

  /** Resolves once the dead segments found so far are deleted. */
  async whenDone(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  /** Deletes the dead prefix now (the store's open, and deleteSoon). */
  async deleteNow(): Promise<void> {
    const { segments, io, logger, dir } = this.options;
    let deleted = 0;
    while (segments.length > 1) {
      const oldest = segments[0];
      if (oldest.live > 0) break;
      try {
        this.options.forget(oldest);
        if (oldest.size > this.options.shrinkStepBytes) await this.#retire(oldest);
        else await io.unlink(oldest.path);
      } catch (err) {
        const file = oldest.path;
        // Already gone (removed by hand, or an unlink retried by a network
        // file system after the first went through): counted present, it
        // would keep every later dead segment on disk for good. Only if
        // it really is: a file left behind and forgotten would come back
        // at the next start, and the messages it holds with it.
        if (!(await isGone(err, file))) {
          logger.warn({ err, file }, 'deleting segment failed');
          break;
        }
        logger.warn({ file }, 'segment to delete was already gone');
      }
      segments.shift();
      this.options.dropped(oldest);
      deleted++;
    }
    if (deleted === 0) return;

    try {
      await io.fsyncDir(dir);
    } catch (err) {
      logger.warn({ err, dir }, 'syncing log directory failed');
    }
  }

  // Renames the segment out of the log durably, then shrinks and unlinks
  // it. Throws only if the rename failed: the segment is then in place.
  async #retire(segment: SegmentState): Promise<void> {
    const { dir, io, logger, shrinkStepBytes: step } = this.options;
    const retired = `${segment.path}${RETIRED_SUFFIX}`;
    await io.rename(segment.path, retired);
    try {
      await io.fsyncDir(dir);
    } catch (err) {
      // Not known to be durable: cutting it short could bring its
      // messages back after a crash. Unlinked whole instead.
      logger.warn({ err, dir }, 'syncing log directory failed');
      await this.#unlinkRetired(retired);
      return;
    }

    try {
      const fd = await io.open(retired, 'r+');
      try {
        for (let end = segment.size - step; end > 0; end -= step) {
          await io.ftruncate(fd, end);
          await sleep(SHRINK_PAUSE_MS);
        }
      } finally {
        await io.close(fd);
      }
    } catch (err) {
      logger.warn({ err, file: retired }, 'shrinking a deleted segment failed; unlinking it whole');
    }
    await this.#unlinkRetired(retired);
  }

  async #unlinkRetired(retired: string): Promise<void> {
    const { io, logger } = this.options;
    try {
      await io.unlink(retired);
    } catch (err) {
      // Out of the log already; the next open removes it.
      logger.warn({ err, file: retired }, 'removing a deleted segment failed');
    }
  }
}

