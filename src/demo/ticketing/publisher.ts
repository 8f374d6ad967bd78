// The ticketing service at the moment a big tour goes on sale: every
// purchase becomes one TICKET_PURCHASED message on each service's queue,
// published in batches, several batches in flight at once, as fast as the
// broker confirms them. It no longer calls payment, e-mail or SMS itself.

import { UsherClientError, type UsherClient } from '../../client/index.js';
import type { Purchase } from './purchases.js';
import type { ServiceName, ServiceQueues } from './setup.js';

export interface PublishSettings {
  /** Messages per publishBatch request (1 to 1000). */
  batchSize: number;
  /** Batches in flight at once. */
  concurrency: number;
}

const MAX_PUBLISH_ATTEMPTS = 5;
const RETRY_FIRST_MS = 100;
/** Refusals worth retrying: no answer, overloaded, unavailable. */
const RETRYABLE_STATUS = new Set([0, 429, 503]);

export class TicketingService {
  /** Ticket ids the broker confirmed, per service queue. */
  readonly published = new Map<ServiceName, Set<string>>();
  /** Messages confirmed so far, all queues together. */
  confirmed = 0;
  /** Publishes the broker answered `duplicate: true` (after a retry). */
  duplicates = 0;
  /** Batches sent again after a retryable failure. */
  retries = 0;
  readonly #client: UsherClient;
  readonly #queues: readonly ServiceQueues[];
  readonly #settings: PublishSettings;
  #stopped = false;

  constructor(
    client: UsherClient,
    queues: readonly ServiceQueues[],
    settings: PublishSettings,
  ) {
    this.#client = client;
    this.#queues = queues;
    this.#settings = settings;
    for (const { service } of queues) this.published.set(service, new Set());
  }

  /**
   * Publishes every purchase to every service queue. The ticket id is the
   * message id, so a batch sent twice (a retry after a lost answer) is
   * stored once: the broker's deduplication makes retrying safe.
   */
  async publishAll(purchases: readonly Purchase[]): Promise<void> {
    const { batchSize, concurrency } = this.#settings;
    const batches: Purchase[][] = [];
    for (let i = 0; i < purchases.length; i += batchSize) {
      batches.push(purchases.slice(i, i + batchSize));
    }

    let next = 0;
    const lane = async () => {
      while (next < batches.length && !this.#stopped) {
        const batch = batches[next++];
        await Promise.all(this.#queues.map((q) => this.#publish(q, batch)));
      }
    };
    const lanes = Math.min(concurrency, batches.length);
    await Promise.all(Array.from({ length: lanes }, lane));
  }

  /** Sends no more batches and gives up retrying (the run is over). */
  stop(): void {
    this.#stopped = true;
  }

  async #publish(
    target: ServiceQueues,
    batch: readonly Purchase[],
  ): Promise<void> {
    const messages = batch.map((purchase) => ({
      id: purchase.ticketId,
      // The event's own bytes, declared as JSON so consumers get it parsed.
      body: purchase.json,
      headers: {
        'content-type': 'application/json',
        'x-event': 'TICKET_PURCHASED',
      },
      priority: target.priority,
    }));

    const results = await this.#withRetry(() =>
      this.#client.publishBatch(target.queue, messages),
    );

    const ids = this.published.get(target.service);
    for (const result of results) {
      if (result.duplicate) this.duplicates++;
      ids?.add(result.id);
    }
    this.confirmed += results.length;
  }

  async #withRetry<T>(send: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await send();
      } catch (err) {
        const retryable =
          err instanceof UsherClientError && RETRYABLE_STATUS.has(err.status);
        const last = attempt >= MAX_PUBLISH_ATTEMPTS || this.#stopped;
        if (!retryable || last) throw err;
        this.retries++;
        const delay = RETRY_FIRST_MS * 2 ** (attempt - 1);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
}
