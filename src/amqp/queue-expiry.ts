// x-expires: a queue nobody uses for that long is deleted, messages and
// all (RabbitMQ). Using it means having a consumer, a basic.get or a
// declare (a passive one too); publishing to it does not count. The clock starts at declare,
// restarts at each get or declare and when the last consumer leaves, and
// after a broker restart.

/** setTimeout waits at most 2^31 - 1 ms; longer expiries re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface ExpiryHooks {
  /** Whether the queue has a consumer now (then it is in use). */
  inUse(queue: string): boolean;
  /** Deletes the queue; errors are the caller's to log. */
  expire(queue: string): Promise<void>;
  now?: () => number;
}

export class QueueExpiry {
  private readonly deadlines = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly now: () => number;

  constructor(private readonly hooks: ExpiryHooks) {
    this.now = hooks.now ?? Date.now;
  }

  /** The queue was used: it expires `expiresMs` from now unless used again. */
  touch(queue: string, expiresMs: number | undefined): void {
    this.stop(queue);
    if (expiresMs === undefined) return;
    this.arm(queue, this.now() + expiresMs);
  }

  stop(queue: string): void {
    const deadline = this.deadlines.get(queue);
    if (deadline === undefined) return;
    clearTimeout(deadline.timer);
    this.deadlines.delete(queue);
  }

  close(): void {
    for (const queue of [...this.deadlines.keys()]) this.stop(queue);
  }

  private arm(queue: string, at: number): void {
    const timer = setTimeout(() => this.fire(queue, at),
      Math.min(MAX_TIMER_MS, Math.max(0, at - this.now())));
    timer.unref();
    this.deadlines.set(queue, { at, timer });
  }

  private fire(queue: string, at: number): void {
    this.deadlines.delete(queue);
    if (this.now() < at) {
      this.arm(queue, at);
      return;
    }
    // A consumer holds it: the clock starts again when the last one goes.
    if (this.hooks.inUse(queue)) return;
    void this.hooks.expire(queue);
  }
}
