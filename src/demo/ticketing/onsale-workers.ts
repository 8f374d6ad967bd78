// The on-sale demo's consumers: one shared pool of workers with a fixed
// capacity that serves its queues in strict priority order, built like a
// consumer with a prefetch window (an AMQP basic.consume with basic.qos):
//
// - one fetcher per queue keeps a few leased messages in this process,
//   asking while the workers work, so a fetch's round trip does not come
//   out of the pool's capacity; the most important queue is long-polled,
//   so a payment comes over as soon as it lands;
// - a worker that is free takes the most important message held, one at
//   a time. A payment therefore waits for the first worker to finish the
//   one message in its hands, never for a batch of notifications: those
//   held in the window are passed over;
// - acks go in batches, one request per queue in flight.
//
// Taking one message per receive request instead cost the pool up to half
// its capacity on a loaded machine (a round trip per message, and two when
// the payment queue was empty), and a batch of five worked in a row made a
// payment wait for up to five messages' work (bench/onsale.ts measures
// both as the `waiting` and `buffered` segments).

import type { ReceivedMessage, UsherClient } from '../../client/index.js';

export interface PoolQueue {
  /** The queue's name; the pool serves queues in the order given. */
  name: string;
  /** Called when a worker starts on the message. */
  onTaken: (message: ReceivedMessage, times: TakenTimes) => void;
}

export interface TakenTimes {
  /** The fetch that brought the message was sent. */
  askedAt: number;
  /** That fetch answered: the message is leased, held in this process. */
  fetchedAt: number;
  /** A worker starts on it. */
  takenAt: number;
}

export interface PoolOptions {
  workers: number;
  /** Messages a second the pool takes, all queues together. */
  capacityPerSecond: number;
  /** The work on one message, to be done by `doneAt` (epoch ms); default:
   * wait until then. Tests pass their own. */
  work?: (message: ReceivedMessage, doneAt: number) => Promise<void>;
  /**
   * How much one message's work varies around the mean, as a fraction:
   * 0.5 draws each between 0.5x and 1.5x of it. Default 0.5. Real work
   * varies; with a fixed time, workers that started together stayed in
   * lockstep for the whole spike, so a payment landing just after they
   * all began waited a full message's work.
   */
  workJitter?: number;
  /** Uniform in [0, 1); injectable for tests. */
  random?: () => number;
}

interface Held {
  message: ReceivedMessage;
  askedAt: number;
  fetchedAt: number;
}

/** Messages held per queue at most; a fetcher asks again below half.
 * Held messages of a lower queue never delay a payment (a free worker
 * takes the payment first), and a fetch that takes 100 ms on a starved
 * machine must still bring enough to keep the workers at capacity. */
const WINDOW = 32;
/** How long a fetch waits for a message when the queue is empty. */
const LONG_POLL_MS = 1000;
/** How much lost work time a worker makes up after its process stalled. */
const CATCH_UP_MS = 100;

export class WorkerPool {
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly held: Held[][];
  private readonly acks: Acks[];
  /** Resolves the workers waiting for a message and the fetchers waiting
   * for room in their window. */
  private wakeUps: Array<() => void> = [];
  private readonly stopping = new AbortController();
  private failure: unknown = null;
  private readonly workers: number;
  private readonly workOn: (message: ReceivedMessage, doneAt: number) => Promise<void>;
  /** Mean work time per message that makes the pool take its capacity. */
  private readonly workMs: number;
  private readonly workJitter: number;
  private readonly random: () => number;

  constructor(
    private readonly client: UsherClient,
    private readonly queues: readonly PoolQueue[],
    options: PoolOptions,
  ) {
    this.workers = options.workers;
    // The mean time per message sets the capacity.
    this.workMs = (options.workers * 1000) / options.capacityPerSecond;
    this.workJitter = options.workJitter ?? 0.5;
    this.random = options.random ?? Math.random;
    this.workOn = options.work ?? ((_, doneAt) => sleep(doneAt - Date.now()));
    this.held = queues.map(() => []);
    this.acks = queues.map((queue) => new Acks(client, queue.name));
  }

  start(): void {
    this.running = true;
    this.loops = [
      ...this.queues.map((_, index) => this.fetch(index)),
      ...Array.from({ length: this.workers }, () => this.work()),
    ];
  }

  /** How many messages of `queue` the pool holds that no worker took yet. */
  heldOf(queue: string): number {
    return this.held[this.queues.findIndex((q) => q.name === queue)]?.length ?? 0;
  }

  /** Stops; hands back what is held unworked; resolves once acks are in. */
  async stop(): Promise<void> {
    this.running = false;
    this.stopping.abort();
    this.wakeAll();
    await Promise.all(this.loops);
    await Promise.all(this.acks.map((acks) => acks.drain()));
    await Promise.all(this.queues.map(async (queue, index) => {
      const receipts = this.held[index].map((h) => h.message.receipt);
      if (receipts.length > 0) await this.client.release(queue.name, receipts);
    }));
    if (this.failure !== null) throw this.failure;
  }

  private async fetch(index: number): Promise<void> {
    const { name } = this.queues[index];
    const held = this.held[index];
    while (this.running) {
      if (held.length > WINDOW / 2) {
        await this.nextWakeUp();
        continue;
      }
      const askedAt = Date.now();
      let messages: ReceivedMessage[];
      try {
        messages = await this.client.receive(name, {
          max: WINDOW - held.length,
          waitMs: LONG_POLL_MS,
          signal: this.stopping.signal,
        });
      } catch (err) {
        // Reported by stop(); the pool takes nothing more meanwhile.
        if (this.running) this.failure ??= err;
        this.running = false;
        this.wakeAll();
        return;
      }
      const fetchedAt = Date.now();
      for (const message of messages) held.push({ message, askedAt, fetchedAt });
      if (messages.length > 0) this.wakeAll();
    }
  }

  private async work(): Promise<void> {
    // When this worker's last message was due to be done. Work is timed
    // against this, not against when a timer fired: a timer late by up to
    // CATCH_UP_MS (this process starved of CPU) is made up by the next
    // messages, which then need no timer, so the pool keeps the capacity
    // it stands for. One timer per message, each a few ms late, cut it
    // from 400 to under 100 msg/s at a load average of 20.
    let doneAt = 0;
    while (this.running) {
      const index = this.held.findIndex((held) => held.length > 0);
      if (index < 0) {
        doneAt = 0;
        await this.nextWakeUp();
        continue;
      }
      const { message, askedAt, fetchedAt } = this.held[index].shift() as Held;
      // Room in the window: the fetcher may ask again.
      this.wakeAll();
      this.queues[index].onTaken(message, { askedAt, fetchedAt, takenAt: Date.now() });
      // After an idle spell there is nothing to make up: start now.
      const now = Date.now();
      const workMs = this.workMs * (1 - this.workJitter + 2 * this.workJitter * this.random());
      doneAt = (doneAt === 0 ? now : Math.max(now - CATCH_UP_MS, doneAt)) + workMs;
      await this.workOn(message, doneAt);
      this.acks[index].add(message.receipt);
    }
  }

  private nextWakeUp(): Promise<void> {
    return new Promise((resolve) => this.wakeUps.push(resolve));
  }

  private wakeAll(): void {
    const waiting = this.wakeUps;
    this.wakeUps = [];
    for (const resolve of waiting) resolve();
  }
}

/** Acks of one queue: gathered while one ack request is on its way. */
class Acks {
  private pending: string[] = [];
  private inFlight: Promise<void> | null = null;
  private failure: unknown = null;

  constructor(
    private readonly client: UsherClient,
    private readonly queue: string,
  ) {}

  add(receipt: string): void {
    this.pending.push(receipt);
    this.inFlight ??= this.send();
  }

  /** Resolves once every receipt added is acked; throws a failed ack. */
  async drain(): Promise<void> {
    while (this.inFlight !== null) await this.inFlight;
    if (this.failure !== null) throw this.failure;
  }

  private async send(): Promise<void> {
    while (this.pending.length > 0) {
      const receipts = this.pending;
      this.pending = [];
      try {
        await this.client.ack(this.queue, receipts);
      } catch (err) {
        this.failure ??= err;
      }
    }
    this.inFlight = null;
  }
}

/** No timer at all when there is no time to wait: a timer fires late. */
function sleep(ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => setTimeout(resolve, ms));
}
