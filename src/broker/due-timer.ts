// The broker's one timer, which drives delays, lease expiry and TTL: it
// is armed for the earliest moment any queue has something due, and then
// runs Broker.runDue, which arms it again. Apart from broker.ts because
// its only state is when it fires next, and a clock jump resets that.

import type { Logger } from 'pino';

/** setTimeout cannot wait longer than 2^31 - 1 ms; wake hourly instead. */
const MAX_TIMER_MS = 60 * 60 * 1000;

/** What the timer needs of the broker. */
export interface DueTimerDeps {
  logger: Logger;
  clock(): number;
  /** True once the broker closes: the timer is armed no more. */
  closing(): boolean;
  /** Runs whatever is due by the clock now (Broker.runDue). */
  runDue(): void;
}

export class DueTimer {
  private timer: NodeJS.Timeout | null = null;
  private timerAt: number | null = null;

  constructor(private readonly deps: DueTimerDeps) {}

  /** Makes sure the timer fires no later than `at`. */
  arm(at: number | null): void {
    if (at === null || this.deps.closing()) return;
    if (this.timerAt !== null && this.timerAt <= at) return;

    if (this.timer !== null) clearTimeout(this.timer);
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, at - this.deps.clock()));
    this.timerAt = at;
    this.timer = setTimeout(() => this.onTimer(), delay);
    this.timer.unref();
  }

  // The timer was armed by the old clock: run what is due by the new one
  // and arm again from there.
  onClockJump(jumpMs: number): void {
    this.deps.logger.warn({ jumpMs }, 'wall clock jumped; rescheduling timers');
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = null;
    this.deps.runDue();
  }

  /** At close: a timer armed is let go of. */
  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
  }

  private onTimer(): void {
    this.timer = null;
    this.timerAt = null;
    this.deps.runDue();
  }
}
