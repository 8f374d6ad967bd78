// UsherClient: one method per endpoint of docs/http-api.md, typed, with
// bodies encoded and decoded on the way, plus consume() for a managed
// consumer loop (consumer.ts).

import {
  checkMessageFields,
  decodePeeked,
  decodeReceived,
  encodeMessage,
  type WireMessage,
  type WirePeeked,
  type WireReceived,
} from './body.js';
import { DEFAULT_RETRY, withBackoff, type RetryPolicy } from './backoff.js';
import { AmqpApi, unsupported } from './amqp-api.js';
import type { PushSource } from './amqp-subscription.js';
import { Consumer, type ConsumeOptions, type Handler } from './consumer.js';
import { Transport, type Credentials } from './transport.js';
import type {
  AckResult,
  CreateQueueResult,
  Health,
  MessageBody,
  NackOptions,
  NackResult,
  OutgoingMessage,
  PeekOptions,
  PeekedMessage,
  PublishOptions,
  PublishResult,
  QueueInfo,
  QueueSettingsInput,
  ReceiveOptions,
  ReceivedMessage,
  RedriveOptions,
} from './types.js';

/**
 * Credentials for a broker that checks them (README, "Running Usher
 * securely in production"): a user and password sent as HTTP Basic, or an
 * API token sent as a bearer token. `http://user:password@host` works
 * too. Without any, the broker treats a request from its own machine as
 * the guest, while the guest is on.
 */
export type ClientOptions = Credentials & {
  /**
   * Publishes refused under load (429/503, QUEUE_FULL or OVERLOADED) are
   * sent again after Retry-After plus jitter, `retries` times (default 4),
   * then fail with MessagesShedError. `{ retries: 0 }` turns this off.
   */
  retry?: Partial<RetryPolicy>;
};

/**
 * Opens a client for the broker at `url`. Nothing is sent until the first
 * call; connections are kept alive and shared between calls.
 *
 * `amqp://user:password@host:5672` speaks AMQP 0-9-1 instead: one
 * connection, publishes pipelined and confirmed once durable. Publishing,
 * receiving, settling, consume() and createQueue/purgeQueue/deleteQueue
 * work as over HTTP (differences in src/client/amqp-api.ts); the rest
 * throws `UNSUPPORTED` naming the method.
 *
 * @example
 *   import { connect } from 'usher';
 *   const usher = connect('http://127.0.0.1:8080');
 *   await usher.createQueue('emails', { maxAttempts: 5 });
 *   await usher.publish('emails', { to: 'ada@example.org' });
 *   const billing = connect('https://usher.internal:8080', {
 *     token: process.env.USHER_TOKEN,
 *   });
 *
 * @throws UsherClientError `INVALID_ARGUMENT` when `url` is not http(s).
 */
export function connect(
  url = 'http://127.0.0.1:8080',
  options: ClientOptions = {},
): UsherClient {
  return new UsherClient(url, options);
}

/** A connection to one broker. Create it with connect(). */
export class UsherClient {
  /** The broker's base URL, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  readonly #http: Transport | null;
  /** Set instead of #http for an amqp:// URL. */
  readonly #amqp: AmqpApi | null;
  readonly #consumers = new Set<Consumer>();
  readonly #retry: RetryPolicy;

  constructor(url: string, options: ClientOptions = {}) {
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    if (/^amqp:/i.test(url)) {
      this.#http = null;
      this.#amqp = new AmqpApi(url);
      this.url = url;
    } else {
      this.#http = new Transport(url, options);
      this.#amqp = null;
      this.url = this.#http.baseUrl;
    }
  }

  /** The HTTP transport, or UNSUPPORTED naming `method` over AMQP. */
  #httpFor(method: string): Transport {
    if (this.#http !== null) return this.#http;
    throw unsupported(method, 'it');
  }

  // --- publishing -------------------------------------------------------

  /**
   * Publishes one message. Bytes are stored as given, a string as UTF-8,
   * anything else as JSON (readable back as the same value).
   *
   * @example
   *   const { id } = await usher.publish('orders', { sku: 'A1', qty: 2 }, {
   *     priority: 5,
   *     headers: { tenant: 'acme' },
   *   });
   */
  async publish(
    queue: string,
    body: MessageBody,
    options: PublishOptions = {},
  ): Promise<PublishResult> {
    checkMessageFields(options, 'options.');
    if (this.#amqp) return this.#amqp.publish(queue, body, options);
    const message = encodeMessage({ ...options, body }, 'body');
    const http = this.#httpFor('publish');
    const answer = await withBackoff(this.#retry, [{ ...options, body }], () =>
      http.request<PublishResult>('POST', `${queuePath(queue)}/messages`, message));
    return answer.data;
  }

  /**
   * Publishes 1 to 1000 messages in one request; results come back in
   * order. The broker refuses the whole batch when one message is bad,
   * naming it in `field` (e.g. `messages.3.priority`). Refused under load,
   * it is retried with backoff, then fails with MessagesShedError.
   *
   * @example
   *   await usher.publishBatch('emails', [
   *     { body: { to: 'ada@example.org' } },
   *     { body: 'plain text', priority: 9 },
   *   ]);
   */
  async publishBatch(
    queue: string,
    messages: readonly OutgoingMessage[],
  ): Promise<PublishResult[]> {
    messages.forEach((message, i) => checkMessageFields(message, `messages.${i}.`));
    if (this.#amqp) return this.#amqp.publishBatch(queue, messages);
    const wire: WireMessage[] = messages.map((message, i) =>
      encodeMessage(message, `messages.${i}.body`),
    );
    // The broker refuses a batch whole, so a shed batch is shed whole.
    const http = this.#httpFor('publishBatch');
    const answer = await withBackoff(this.#retry, messages, () =>
      http.request<{ results: PublishResult[] }>(
        'POST',
        `${queuePath(queue)}/messages/batch`,
        { messages: wire },
      ));
    return answer.data.results;
  }

  // --- receiving and settling ------------------------------------------

  /**
   * Leases up to `max` messages, waiting up to `waitMs` for the first.
   * Each must then be acked, nacked or extended before its lease runs out,
   * or it is delivered again.
   *
   * @example
   *   const [message] = await usher.receive('orders', { waitMs: 5000 });
   *   if (message) await usher.ack('orders', message.receipt);
   */
  async receive(
    queue: string,
    options: ReceiveOptions = {},
  ): Promise<ReceivedMessage[]> {
    if (this.#amqp) return this.#amqp.receive(queue, options);
    const { signal, ...request } = options;
    const answer = await this.#httpFor('receive').request<{ messages: WireReceived[] }>(
      'POST',
      `${queuePath(queue)}/receive`,
      { max: 1, waitMs: 0, ...request },
      signal,
    );
    return answer.data.messages.map(decodeReceived);
  }

  /**
   * Acknowledges one lease or many; acked messages are gone for good.
   * A single receipt that is no current lease throws `RECEIPT_NOT_FOUND`;
   * with an array, such receipts answer false in `results` instead.
   *
   * @example
   *   await usher.ack('orders', messages.map((m) => m.receipt));
   */
  async ack(
    queue: string,
    receipts: string | readonly string[],
  ): Promise<AckResult> {
    if (this.#amqp) return this.#amqp.ack(queue, receipts);
    const body =
      typeof receipts === 'string' ? { receipt: receipts } : { receipts };
    const answer = await this.#httpFor('ack').request<AckResult>(
      'POST',
      `${queuePath(queue)}/ack`,
      body,
    );
    return answer.data;
  }

  /**
   * Gives a message back: retried after the queue's backoff (or `delayMs`),
   * or dead-lettered now with `requeue: false`. Answers what became of it
   * (a last attempt dies too); null over AMQP, whose nack says nothing.
   *
   * @example
   *   await usher.nack('orders', message.receipt, {
   *     delayMs: 10_000,
   *     reason: 'payment service down',
   *   });
   */
  async nack(
    queue: string,
    receipt: string,
    options: NackOptions = {},
  ): Promise<NackResult | null> {
    if (this.#amqp) {
      await this.#amqp.nack(queue, receipt, options);
      return null;
    }
    const answer = await this.#httpFor('nack').request<NackResult & { ok: true }>(
      'POST',
      `${queuePath(queue)}/nack`,
      { receipt, ...options },
    );
    const { ok: _ok, ...result } = answer.data;
    return result;
  }

  /**
   * Makes a lease run out `timeoutMs` from now; answers the new deadline.
   *
   * @example
   *   const deadline = await usher.extend('orders', message.receipt, 60_000);
   */
  async extend(
    queue: string,
    receipt: string,
    timeoutMs: number,
  ): Promise<number> {
    if (this.#amqp) return this.#amqp.extend();
    const answer = await this.#httpFor('extend').request<{ leaseDeadline: number }>(
      'POST',
      `${queuePath(queue)}/extend`,
      { receipt, timeoutMs },
    );
    return answer.data.leaseDeadline;
  }

  /**
   * Hands leases back unprocessed: the messages are ready again at once and
   * no attempt is counted. Answers how many were current leases.
   *
   * @example
   *   await usher.release('orders', later.map((m) => m.receipt));
   */
  async release(queue: string, receipts: string[]): Promise<number> {
    if (this.#amqp) return this.#amqp.release(queue, receipts);
    const answer = await this.#httpFor('release').request<{ released: number }>(
      'POST',
      `${queuePath(queue)}/release`,
      { receipts },
    );
    return answer.data.released;
  }

  /**
   * Runs `handler` for every message of `queue` until stopped: acks when it
   * returns, nacks (reason: the error's message) when it throws, and then
   * calls `onError(error, message)`. See ConsumeOptions for concurrency,
   * batching and onError.
   *
   * @example
   *   const consumer = usher.consume('emails', async (message) => {
   *     await sendEmail(message.body);
   *   }, { concurrency: 8 });
   *   process.on('SIGTERM', () => consumer.stop());
   */
  consume(
    queue: string,
    handler: Handler,
    options: ConsumeOptions = {},
  ): Consumer {
    const consumer = new Consumer(this, queue, handler, options, () =>
      this.#consumers.delete(consumer),
    );
    this.#consumers.add(consumer);
    return consumer;
  }

  /**
   * @internal Over AMQP, consume() takes pushed deliveries (basic.consume
   * with this prefetch) instead of receiving; null over HTTP.
   */
  pushSource(queue: string, prefetch: number): PushSource<ReceivedMessage> | null {
    return this.#amqp?.pushSource(queue, prefetch) ?? null;
  }

  /**
   * Drops everything at once, as a crashed process would: consumers stop
   * without waiting for their handlers, nothing more is acked, and the
   * leases held come back when they run out (over AMQP: at once, as the
   * connection closes).
   *
   * @example
   *   process.on('uncaughtException', () => usher.abort());
   */
  abort(): void {
    for (const consumer of this.#consumers) void consumer.stop();
    this.#amqp?.abort();
  }

  /** Stops every consumer started from this client (see Consumer.stop). */
  async close(): Promise<void> {
    await Promise.all([...this.#consumers].map((c) => c.stop()));
    await this.#amqp?.close();
  }

  // --- queues -----------------------------------------------------------

  /**
   * Creates a queue, or changes the settings named on an existing one;
   * settings left out take the broker's defaults on a new queue and keep
   * their value on an existing one. Changing `fifo` throws `QUEUE_EXISTS`.
   *
   * @example
   *   await usher.createQueue('orders', {
   *     maxAttempts: 5,
   *     backoff: { initialMs: 1000, maxMs: 60_000 },
   *     deadLetter: 'orders.dlq',
   *   });
   */
  async createQueue(
    name: string,
    settings: QueueSettingsInput = {},
  ): Promise<CreateQueueResult> {
    if (this.#amqp) return this.#amqp.createQueue(name, settings);
    const answer = await this.#httpFor('createQueue').request<QueueInfo>(
      'PUT',
      queuePath(name),
      settings,
    );
    return { created: answer.status === 201, queue: answer.data };
  }

  /**
   * Lists every queue with its settings and stats.
   *
   * @example
   *   for (const q of await usher.listQueues()) {
   *     console.log(q.name, q.stats.ready);
   *   }
   */
  async listQueues(): Promise<QueueInfo[]> {
    const answer = await this.#httpFor('listQueues').request<{ queues: QueueInfo[] }>(
      'GET',
      '/queues',
    );
    return answer.data.queues;
  }

  /**
   * One queue's settings and stats; throws `QUEUE_NOT_FOUND` when absent.
   *
   * @example
   *   const { stats } = await usher.getQueue('orders');
   */
  async getQueue(name: string): Promise<QueueInfo> {
    const answer = await this.#httpFor('getQueue').request<QueueInfo>(
      'GET',
      queuePath(name),
    );
    return answer.data;
  }

  /**
   * Drops every message of a queue; answers how many.
   *
   * @example
   *   const dropped = await usher.purgeQueue('orders');
   */
  async purgeQueue(name: string): Promise<number> {
    if (this.#amqp) return this.#amqp.purgeQueue(name);
    const answer = await this.#httpFor('purgeQueue').request<{ purged: number }>(
      'POST',
      `${queuePath(name)}/purge`,
    );
    return answer.data.purged;
  }

  /**
   * Deletes a queue and its messages.
   *
   * @example
   *   await usher.deleteQueue('scratch');
   */
  async deleteQueue(name: string): Promise<void> {
    if (this.#amqp) return this.#amqp.deleteQueue(name);
    await this.#httpFor('deleteQueue').request('DELETE', queuePath(name));
  }

  /**
   * Lists messages without leasing them, e.g. to inspect a dead-letter
   * queue: the waiting ones in the order a receive would deliver them,
   * then those in flight.
   *
   * @example
   *   const dead = await usher.peek('orders.dlq', { limit: 10 });
   */
  async peek(
    queue: string,
    options: PeekOptions = {},
  ): Promise<PeekedMessage[]> {
    const { limit, offset } = options;
    const query = new URLSearchParams();
    if (limit !== undefined) query.set('limit', String(limit));
    if (offset !== undefined) query.set('offset', String(offset));
    const search = query.toString() ? `?${query}` : '';

    const answer = await this.#httpFor('peek').request<{ messages: WirePeeked[] }>(
      'GET',
      `${queuePath(queue)}/messages${search}`,
    );
    return answer.data.messages.map(decodePeeked);
  }

  /**
   * Moves messages out of a (dead-letter) queue: to `to`, or back to the
   * queue each came from. Answers how many moved.
   *
   * @example
   *   const moved = await usher.redrive('orders.dlq', { max: 100 });
   */
  async redrive(queue: string, options: RedriveOptions = {}): Promise<number> {
    const answer = await this.#httpFor('redrive').request<{ moved: number }>(
      'POST',
      `${queuePath(queue)}/redrive`,
      options,
    );
    return answer.data.moved;
  }

  /**
   * The broker's health.
   *
   * @example
   *   const { status } = await usher.health(); // 'ok'
   */
  async health(): Promise<Health> {
    // 503 is the health of a degraded broker, not an error.
    const answer = await this.#httpFor('health').request<Health>(
      'GET', '/healthz', undefined, undefined, 503,
    );
    return answer.data;
  }
}

function queuePath(name: string): string {
  return `/queues/${encodeURIComponent(name)}`;
}
