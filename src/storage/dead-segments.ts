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

import { unlink } from 'node:fs/promises';

import type { StoreIo } from './io.js';
import type { SegmentState } from './ledger.js';
import type { StoreLogger } from './log-store.js';
import { fsyncDir, isGone } from './segment-file.js';

export interface DeadSegmentsOptions {
  dir: string;
  io: StoreIo;
  logger: StoreLogger;
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

  /** Whether a deletion is under way. */
  get busy(): boolean {
    return this.#running !== undefined;
  }

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
        await (io.unlink ?? unlink)(oldest.path);
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
      await fsyncDir(dir);
    } catch (err) {
      logger.warn({ err, dir }, 'syncing log directory failed');
    }
  }
}
