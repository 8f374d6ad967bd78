// The on-sale demo's consumers: one shared pool of workers with a fixed
// capacity that serves its queues in strict priority order, one message at
// a time, the way job runners with strictly ordered queues work. A worker
// holds at most the one message in its hands, so a payment waits for the
// first worker to finish one message, never for a batch of notifications
// or recommendations it took earlier. (Taking a batch of five cost
// payments up to five messages' work in the spike: bench/onsale.ts shows
// the `waiting` segment.)
//
// Idle workers long-poll the most important queue, so a payment that lands
// while the pool has nothing to do is taken at once; other kinds then wait
// at most IDLE_WAIT_MS, which does not matter for them.
//
// A worker acks without waiting for the answer before it asks for the next
// message, as an AMQP consumer's basic.ack has no answer: the pool's
// capacity is the work time alone, not work time plus an ack round trip.

import type { ReceivedMessage, UsherClient } from '../../client/index.js';

export interface PoolQueue {
  /** The queue's name; the pool asks them in the order given. */
  name: string;
  /** Called when a worker has the message, before it works on it. */
  onTaken: (message: ReceivedMessage, askedAt: number, takenAt: number) => void;
}

export interface PoolOptions {
  workers: number;
  /** Messages a second the pool takes, all queues together. */
  capacityPerSecond: number;
  /** The work on one message; default: the time per message that makes
   * the pool take `capacityPerSecond` (tests pass their own). */
  work?: (message: ReceivedMessage) => Promise<void>;
}

const IDLE_WAIT_MS = 20;

export class WorkerPool {
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly acks = new Set<Promise<unknown>>();
  private ackFailure: unknown = null;
  private readonly workers: number;
  private readonly workOn: (message: ReceivedMessage) => Promise<void>;

  constructor(
    private readonly client: UsherClient,
    private readonly queues: readonly PoolQueue[],
    options: PoolOptions,
  ) {
    this.workers = options.workers;
    // A fixed time per message sets the capacity.
    const workMs = (options.workers * 1000) / options.capacityPerSecond;
    this.workOn = options.work ?? (() => sleep(workMs));
  }

  start(): void {
    this.running = true;
    this.loops = Array.from({ length: this.workers }, () => this.loop());
  }

  /** Stops taking messages; resolves once every ack is answered. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    await Promise.all(this.acks);
    if (this.ackFailure !== null) throw this.ackFailure;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      if (await this.takeOne()) continue;
      await this.waitForMostImportant();
    }
  }

  /** Asks the queues in order for one message; works on the first found. */
  private async takeOne(): Promise<boolean> {
    for (const queue of this.queues) {
      const askedAt = Date.now();
      const [message] = await this.client.receive(queue.name, { max: 1 });
      if (message === undefined) continue;
      await this.work(queue, message, askedAt);
      return true;
    }
    return false;
  }

  private async waitForMostImportant(): Promise<void> {
    const queue = this.queues[0];
    const askedAt = Date.now();
    const [message] = await this.client.receive(queue.name, { max: 1, waitMs: IDLE_WAIT_MS });
    if (message !== undefined) await this.work(queue, message, askedAt);
  }

  private async work(queue: PoolQueue, message: ReceivedMessage, askedAt: number): Promise<void> {
    queue.onTaken(message, askedAt, Date.now());

    await this.workOn(message);

    const ack = this.client.ack(queue.name, message.receipt).catch((err: unknown) => {
      this.ackFailure ??= err;
    });
    this.acks.add(ack);
    void ack.finally(() => this.acks.delete(ack));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
