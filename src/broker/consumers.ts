// Handing messages out: a receive takes what is ready or waits as a
// long poll, a subscriber (an AMQP consumer) is pushed batches as its
// credit allows, and every change to a queue serves both (serveWaiters).
// Apart from broker.ts as the one place that decides who gets a ready
// message; acks and nacks of what was handed out are in settling.ts.

import type { QueueEngine } from '../engine/queue.js';
import type { Delivery } from '../engine/types.js';
import type { Observations } from '../observe/observations.js';
import { checkCount } from './checks.js';
import { view } from './messages.js';
import { MAX_DURATION_MS, checkDuration } from './settings.js';
import type { ReceiveOptions, ReceivedMessage, Subscriber, Subscription } from './types.js';

export const MAX_RECEIVE = 1000;
/** Most messages handed to one subscriber in one turn. */
const MAX_PUSH_BATCH = 64;
/** Longest lease a subscriber may hold (an AMQP channel's: its consumer timeout and a minute). */
const MAX_LEASE_MS = MAX_DURATION_MS;
const MAX_WAIT_MS = 20_000;

/** A long poll waiting for messages of one queue. */
export interface Waiter {
  max: number;
  leaseMs: number;
  resolve(messages: ReceivedMessage[]): void;
  timer: NodeJS.Timeout;
  cleanup(): void;
}

/** What handing messages out needs of the broker, whose maps these are:
 * deleting a queue and closing empty them too. */
export interface ConsumersDeps {
  engines: Map<string, QueueEngine>;
  waiters: Map<QueueEngine, Waiter[]>;
  subscribers: Map<QueueEngine, Subscriber[]>;
  observed: Observations;
  clock(): number;
  /** Messages up to this seq may have been delivered before a crash (crash-marks.ts). */
  maybeDeliveredUpTo(): number;
  checkOpen(): void;
  engineOf(name: string, field?: string): QueueEngine;
  afterChange(engine: QueueEngine): void;
}

export class Consumers {
  /** Subscribes and cancels so far, by subscriber list (serveRound). */
  readonly #changes = new WeakMap<Subscriber[], number>();

  constructor(private readonly deps: ConsumersDeps) {}

  async receive(queue: string, options: ReceiveOptions): Promise<ReceivedMessage[]> {
    this.deps.checkOpen();
    const engine = this.deps.engineOf(queue);
    const max = checkCount(options.max, 'max', MAX_RECEIVE);
    const waitMs = checkDuration(options.waitMs, 'waitMs', { max: MAX_WAIT_MS });
    const leaseMs =
      options.visibilityTimeoutMs === undefined
        ? engine.settings.visibilityTimeoutMs
        : checkDuration(options.visibilityTimeoutMs, 'visibilityTimeoutMs', { min: 1 });

    const now = this.deps.clock();
    const deliveries = engine.receive(now, max, leaseMs);
    this.deps.afterChange(engine);
    if (deliveries.length > 0 || waitMs === 0 || options.signal?.aborted) {
      return this.handOut(engine, deliveries);
    }
    return this.wait(engine, max, leaseMs, waitMs, options.signal);
  }


  subscribe(queue: string, subscriber: Subscriber): Subscription {
    this.deps.checkOpen();
    const engine = this.deps.engineOf(queue);
    checkDuration(subscriber.leaseMs, 'leaseMs', { min: 1, max: MAX_LEASE_MS });

    const list = this.deps.subscribers.get(engine) ?? [];
    this.deps.subscribers.set(engine, list);
    // Kept highest priority first, each after those of its own.
    const priority = priorityOf(subscriber);
    const at = list.findIndex((other) => priorityOf(other) < priority);
    if (at < 0) list.push(subscriber);
    else list.splice(at, 0, subscriber);
    this.#changed(list);
    this.deps.afterChange(engine);

    return {
      cancel: () => {
        const index = list.indexOf(subscriber);
        if (index >= 0) list.splice(index, 1);
        this.#changed(list);
        if (list.length === 0 && this.deps.subscribers.get(engine) === list) {
          this.deps.subscribers.delete(engine);
        }
      },
      wake: () => {
        if (this.deps.engines.get(engine.name) === engine) this.deps.afterChange(engine);
      },
    };
  }

  /** After any change to a queue: its subscribers first, then its long polls. */
  serveWaiters(engine: QueueEngine): void {
    this.serveSubscribers(engine);
    const queueWaiters = this.deps.waiters.get(engine);
    if (queueWaiters === undefined) return;

    while (queueWaiters.length > 0 && engine.counts.ready > 0) {
      const waiter = queueWaiters[0];
      const deliveries = engine.receive(this.deps.clock(), waiter.max, waiter.leaseMs);
      if (deliveries.length === 0) break;
      waiter.cleanup();
      waiter.resolve(this.handOut(engine, deliveries));
    }
    if (queueWaiters.length === 0) this.deps.waiters.delete(engine);
  }

  /**
   * Hands ready messages to subscribers with credit, one batch each in
   * turn, so a subscriber with a large prefetch cannot starve the others.
   */
  private serveSubscribers(engine: QueueEngine): void {
    const list = this.deps.subscribers.get(engine);
    if (list === undefined) return;
    // Sorted, so the ends differ only when priorities do.
    if (priorityOf(list[0]) !== priorityOf(list[list.length - 1])) {
      this.serveByPriority(engine, list);
      return;
    }

    let served = true;
    while (served && engine.counts.ready > 0) {
      served = false;
      // Rotating first means the next round starts with the next one.
      for (let turn = 0; turn < list.length && engine.counts.ready > 0; turn++) {
        const subscriber = list[0];
        list.push(list.shift() as Subscriber);
        const credit = Math.min(subscriber.credit(), MAX_PUSH_BATCH);
        if (!(credit >= 1)) continue;

        const deliveries = engine.receive(
          this.deps.clock(),
          Math.floor(credit),
          subscriber.leaseMs,
        );
        if (deliveries.length === 0) return;
        subscriber.deliver(this.handOut(engine, deliveries));
        served = true;
      }
    }
  }

  /**
   * serveSubscribers for subscribers of several priorities: a round for
   * the highest, and for a lower one only once every one above it took
   * nothing (no credit); each round starts again from the top.
   */
  private serveByPriority(engine: QueueEngine, list: Subscriber[]): void {
    for (let start = 0; start < list.length && engine.counts.ready > 0;) {
      let end = start + 1;
      while (end < list.length && priorityOf(list[end]) === priorityOf(list[start])) end++;
      const round = this.serveRound(engine, list, start, end);
      if (round === 'dry') return;
      start = round === 'served' ? 0 : end;
    }
  }

  /**
   * One batch each for subscribers start to end - 1 of `list`, rotating
   * them so the next round starts with the next one. 'dry': the queue
   * had nothing to give though it counts messages ready.
   */
  private serveRound(engine: QueueEngine, list: Subscriber[], start: number,
    end: number): 'served' | 'none' | 'dry' {
    let outcome: 'served' | 'none' = 'none';
    for (let turn = start; turn < end && engine.counts.ready > 0; turn++) {
      const subscriber = list[start];
      list.copyWithin(start, start + 1, end);
      list[end - 1] = subscriber;
      const credit = Math.min(subscriber.credit(), MAX_PUSH_BATCH);
      if (!(credit >= 1)) continue;

      const deliveries = engine.receive(this.deps.clock(), Math.floor(credit), subscriber.leaseMs);
      if (deliveries.length === 0) return 'dry';
      const before = this.#changes.get(list);
      subscriber.deliver(this.handOut(engine, deliveries));
      // A subscriber cancelled or added from deliver moved the others:
      // start and end are stale, and rotating by them put a lower
      // priority ahead of a higher one. The tiers are found again. (A
      // count of changes, not the list's length: a cancel and a subscribe
      // together leave the length as it was.)
      if (this.#changes.get(list) !== before) return 'served';
      outcome = 'served';
    }
    return outcome;
  }

  #changed(list: Subscriber[]): void {
    this.#changes.set(list, (this.#changes.get(list) ?? 0) + 1);
  }

  /** Deliveries as consumers see them, timing how long each waited. */
  private handOut(engine: QueueEngine, deliveries: Delivery[]): ReceivedMessage[] {
    const now = this.deps.clock();
    const latency = this.deps.observed.queueLatency(engine.name).timeInQueue;
    return deliveries.map((delivery) => {
      latency.observeMs(now - delivery.message.availableAt);
      return view(engine, delivery, this.deps.maybeDeliveredUpTo());
    });
  }

  private wait(
    engine: QueueEngine,
    max: number,
    leaseMs: number,
    waitMs: number,
    signal: AbortSignal | undefined,
  ): Promise<ReceivedMessage[]> {
    return new Promise((resolve) => {
      const queueWaiters = this.deps.waiters.get(engine) ?? [];
      this.deps.waiters.set(engine, queueWaiters);

      const onAbort = () => {
        waiter.cleanup();
        resolve([]);
      };
      const waiter: Waiter = {
        max,
        leaseMs,
        resolve,
        timer: setTimeout(onAbort, waitMs),
        cleanup: () => {
          clearTimeout(waiter.timer);
          signal?.removeEventListener('abort', onAbort);
          const index = queueWaiters.indexOf(waiter);
          if (index >= 0) queueWaiters.splice(index, 1);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      queueWaiters.push(waiter);
    });
  }
}

function priorityOf(subscriber: Subscriber): number {
  return subscriber.priority ?? 0;
}
