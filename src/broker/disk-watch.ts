// The free-space floor (issue #3): the data directory's free bytes are
// measured at start and every second after. Publishing is what grows the
// log, so below the floor only publishes are refused; acks and compaction
// are what free space again (CASES.md C17), so they keep working.

import type { Logger } from 'pino';

import { diskSizeOf } from '../observe/resources.js';

const CHECK_MS = 1000;

export class DiskWatch {
  /** Until the first measure: unknown, taken as plenty. */
  freeBytes = Number.POSITIVE_INFINITY;
  /** The whole file system's size; -1 until measured. */
  sizeBytes = -1;
  #timer: NodeJS.Timeout | null = null;

  private constructor(
    readonly floorBytes: number,
    private readonly dir: string,
    private readonly measure: (dir: string) => Promise<number>,
    private readonly onLowChange: (low: boolean) => void,
    private readonly logger: Logger,
  ) {}

  /** Measures once, then every second until stop(). */
  static async start(
    dir: string,
    floorBytes: number,
    measure: (dir: string) => Promise<number>,
    onLowChange: (low: boolean) => void,
    logger: Logger,
  ): Promise<DiskWatch> {
    const watch = new DiskWatch(floorBytes, dir, measure, onLowChange, logger);
    await watch.#check();
    watch.#timer = setInterval(() => void watch.#check(), CHECK_MS);
    watch.#timer.unref();
    return watch;
  }

  /** Below the floor: publishes are refused. */
  get low(): boolean {
    return this.freeBytes < this.floorBytes;
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  async #check(): Promise<void> {
    try {
      const free = await this.measure(this.dir);
      const low = free < this.floorBytes;
      if (low !== this.low) {
        this.logger.warn(
          { freeBytes: free, floorBytes: this.floorBytes },
          low ? 'disk below floor; refusing publishes' : 'disk above floor again',
        );
      }
      this.freeBytes = free;
      this.onLowChange(low);
      this.sizeBytes = await diskSizeOf(this.dir);
    } catch (err) {
      this.logger.warn({ err, dir: this.dir }, 'cannot measure free disk space');
    }
  }
}
