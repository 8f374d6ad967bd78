// Deletes the exclusive queues of a connection that has gone: they go
// with it (RabbitMQ). A delete the log refuses (ENOSPC, EIO) is tried
// again with a bounded backoff until it is written, the queue is deleted
// some other way, or the listener closes; a restart deletes whatever is
// left (Topology.deleteOrphanedExclusive). Meanwhile the topology keeps
// the queue locked to every connection, as RabbitMQ answers 405 for a
// gone owner's queue it has not yet reaped.

import type { Logger } from 'pino';

/** Delays before each retry, the last repeated: about a minute at most. */
const RETRY_DELAYS_MS = [100, 200, 500, 1_000, 2_000, 5_000, 15_000, 60_000];

/** One queue being deleted; a new one replaces it if the name is reused. */
interface Reaping {
  failures: number;
  timer: NodeJS.Timeout | null;
}

export class ExclusiveReaper {
  private readonly reaping = new Map<string, Reaping>();
  private readonly underway = new Set<Promise<void>>();
  private closed = false;

  constructor(
    /** Deletes `queue` if it is still there; rejects when it could not. */
    private readonly deleteQueue: (queue: string) => Promise<void>,
  ) {}

  /** Settles once each of `queues` was deleted or its retry planned. */
  reap(queues: readonly string[], logger: Logger): Promise<void> {
    const first = queues.map((queue) => {
      const reaping: Reaping = { failures: 0, timer: null };
      this.reaping.set(queue, reaping);
      return this.attempt(queue, reaping, logger);
    });
    return Promise.all(first).then(() => {});
  }

  /** `queue` is gone (deleted over HTTP, say): no more retries of it. */
  forget(queue: string, only?: Reaping): void {
    const reaping = this.reaping.get(queue);
    if (reaping === undefined || (only !== undefined && reaping !== only)) return;
    if (reaping.timer !== null) clearTimeout(reaping.timer);
    this.reaping.delete(queue);
  }

  /** The listener is closing: no more retries; a restart deletes the rest. */
  close(): void {
    this.closed = true;
    for (const queue of [...this.reaping.keys()]) this.forget(queue);
  }

  /** Settles once the deletes under way have ended. */
  async settled(): Promise<void> {
    await Promise.all(this.underway);
  }

  private attempt(queue: string, reaping: Reaping, logger: Logger): Promise<void> {
    reaping.timer = null;
    const attempt = this.deleteQueue(queue).then(
      () => this.forget(queue, reaping),
      (err: unknown) => this.failed(queue, reaping, logger, err),
    );
    this.underway.add(attempt);
    return attempt.finally(() => this.underway.delete(attempt));
  }

  private failed(queue: string, reaping: Reaping, logger: Logger, err: unknown): void {
    // Forgotten meanwhile, or the name taken by a queue made anew.
    if (this.closed || this.reaping.get(queue) !== reaping) return;
    reaping.failures++;
    const delayMs = RETRY_DELAYS_MS[Math.min(reaping.failures, RETRY_DELAYS_MS.length) - 1];
    // Warned once: the retries that follow would repeat it every minute.
    const level = reaping.failures === 1 ? 'warn' : 'debug';
    logger[level]({ err, queue, retryInMs: delayMs }, 'exclusive queue not deleted');
    reaping.timer = setTimeout(() => void this.attempt(queue, reaping, logger), delayMs);
    // A broker left to stop by itself is not kept alive by a retry.
    reaping.timer.unref();
  }
}
