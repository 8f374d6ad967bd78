// RabbitMQ's consumer timeout: a channel that holds a delivery unacked for
// this long is closed with 406, and its deliveries go back. One timer a
// channel, armed while it holds deliveries, for when its oldest would be
// due; it looks at the deliveries only then, never per delivery.

import { REPLY } from './constants.js';
import { AmqpError } from './errors.js';

/** What the deadline needs of a channel. */
export interface AckTimeoutHost {
  readonly number: number;
  /** Date.now() of each delivery held unacked; none: nothing held. */
  deliveryTimes(): Iterable<number>;
  /** Closes the channel with `error`. */
  fail(error: AmqpError): void;
}

export class AckTimeout {
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(
    private readonly host: AckTimeoutHost,
    private readonly timeoutMs: number,
  ) {}

  /** A delivery is held: check once the oldest could be due, if no check is set. */
  arm(): void {
    if (this.#timer !== null || this.#stopped) return;
    this.#wait(this.timeoutMs);
  }

  /** The channel closed. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #wait(ms: number): void {
    this.#timer = setTimeout(() => this.#check(), ms);
    this.#timer.unref();
  }

  #check(): void {
    this.#timer = null;
    if (this.#stopped) return;
    let oldest = Number.POSITIVE_INFINITY;
    for (const time of this.host.deliveryTimes()) oldest = Math.min(oldest, time);
    if (oldest === Number.POSITIVE_INFINITY) return;

    const waitMs = oldest + this.timeoutMs - Date.now();
    if (waitMs > 0) {
      this.#wait(waitMs);
      return;
    }
    this.host.fail(new AmqpError(REPLY.PRECONDITION_FAILED,
      `delivery acknowledgement on channel ${this.host.number} timed out. Timeout value ` +
      `used: ${this.timeoutMs} ms (usher serve --amqp-consumer-timeout)`));
  }
}
