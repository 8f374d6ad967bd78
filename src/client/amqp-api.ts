// UsherClient's API over AMQP 0-9-1, for connect('amqp://...'). The
// connection opens on the first call. What AMQP can say maps onto it:
//
//   publish, publishBatch   basic.publish, confirmed once durable; `id` goes
//                           in x-usher-id so deduplication still works
//   receive                 basic.get, polled until `waitMs` runs out: a
//                           one-shot receive of up to `max` is what get
//                           says; basic.consume would push more than asked
//   consume()               basic.consume on a channel of its own with a
//                           prefetch of its concurrency; acks by delivery
//                           tag there; basic.cancel on stop (see
//                           amqp-subscription.ts)
//   ack, nack, release      basic.ack / basic.nack / basic.reject on the
//                           same channel
//   createQueue             queue.declare with Usher's x-usher-* arguments
//   purgeQueue, deleteQueue queue.purge, queue.delete
//
// What it cannot say throws UNSUPPORTED naming the method: queue info and
// stats (getQueue, listQueues, createQueue's `queue`), peek, redrive,
// extend, health, FIFO groups, delays, lease lengths and nack delays.
// Where the two differ even so, the HTTP answer is the reference:
//   - a receipt is good on this connection only, while its AMQP channel
//     lives; held unacked past the broker's consumer timeout (30 minutes
//     by default), it closes that channel and goes back;
//   - `duplicate` is always false: a confirm does not say;
//   - a nack's `reason` is not carried; a requeued nack waits the queue's
//     backoff, and a release is ready again at once, both counting as an
//     attempt;
//   - `attempt` comes from x-delivery-count (which Usher sends);
//   - publishBatch is not all-or-nothing: each message is confirmed alone;
//   - createQueue on an existing queue with other settings is QUEUE_EXISTS
//     (AMQP's redeclare rule) instead of changing them;
//   - a lost connection fails what was in flight on it (publishes with
//     OUTCOME_UNKNOWN); the next call opens a new one.

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { tableFrom, type PlainValue } from '../amqp/field-table.js';
import type { Method, MethodOf } from '../amqp/methods.js';
import { ID_HEADER } from '../amqp/mapping.js';
import { type AmqpReply, UsherAmqpClient } from './amqp.js';
import { decodeDelivery } from './amqp-terms.js';
import {
  type AmqpSubscription,
  type PushedDelivery,
  type PushSource,
  PushedMessages,
} from './amqp-subscription.js';
import { checkBody } from './body.js';
import { CLIENT_ERROR_CODES, UsherClientError } from './errors.js';
import type {
  AckResult,
  CreateQueueResult,
  MessageBody,
  NackOptions,
  OutgoingMessage,
  PublishOptions,
  PublishResult,
  QueueSettingsInput,
  ReceiveOptions,
  ReceivedMessage,
} from './types.js';

/** Usher's AMQP lease on an unacked delivery (src/amqp/channel-deliveries.ts). */
const LEASE_MS = 30 * 60 * 1000;
const MAX_RECEIVE = 1000;
const MAX_WAIT_MS = 20_000;
const POLL_FIRST_MS = 10;
const POLL_MAX_MS = 200;

/** A delivery handed out as a receipt, until it is settled. */
interface Lease {
  queue: string;
  deliveryTag: number;
  /** Whether the channel that delivered it still holds it. */
  isCurrent(): boolean;
  /** Sends basic.ack or basic.nack on that channel. */
  settle(method: Method): void;
}

export class AmqpApi {
  #link: Promise<UsherAmqpClient> | null = null;
  /** The connection #link resolved to, once open. */
  #open: UsherAmqpClient | null = null;
  /** After close() or abort(): no new connection is opened. */
  #ended = false;
  /** Receipts handed out and not yet settled. */
  readonly #leased = new Map<string, Lease>();
  #receipts = 0;

  constructor(readonly url: string) {}

  // --- publishing -------------------------------------------------------

  async publish(
    queue: string,
    body: MessageBody,
    options: PublishOptions = {},
  ): Promise<PublishResult> {
    checkPublish('publish', { ...options, body }, 'body');
    return this.#publishChecked(await this.#connected(), queue, { ...options, body });
  }

  async publishBatch(
    queue: string,
    messages: readonly OutgoingMessage[],
  ): Promise<PublishResult[]> {
    messages.forEach((message, i) => checkPublish('publishBatch', message, `messages.${i}.body`));
    const link = await this.#connected();
    return Promise.all(messages.map((message) => this.#publishChecked(link, queue, message)));
  }

  async #publishChecked(
    link: UsherAmqpClient,
    queue: string,
    message: OutgoingMessage,
  ): Promise<PublishResult> {
    const id = message.id ?? randomUUID();
    await link.publish(queue, message.body, { ...message, id });
    return { id, duplicate: false };
  }

  // --- receiving and settling --------------------------------------------

  async receive(queue: string, options: ReceiveOptions = {}): Promise<ReceivedMessage[]> {
    const { max = 1, waitMs = 0, visibilityTimeoutMs, signal } = options;
    if (visibilityTimeoutMs !== undefined) {
      throw unsupported('receive', 'visibilityTimeoutMs (AMQP leases last 30 minutes)');
    }
    checkRange('max', max, 1, MAX_RECEIVE);
    checkRange('waitMs', waitMs, 0, MAX_WAIT_MS);
    const link = await this.#connected();

    const deadline = Date.now() + waitMs;
    const received: ReceivedMessage[] = [];
    for (let pause = POLL_FIRST_MS; ; pause = Math.min(pause * 2, POLL_MAX_MS)) {
      if (signal?.aborted) throw aborted(queue);
      while (received.length < max) {
        const reply = await link.call(
          { name: 'basic.get', queue, noAck: false },
          ['basic.get-ok', 'basic.get-empty'],
        );
        if (reply.method.name !== 'basic.get-ok') break;
        const method = reply.method as MethodOf<'basic.get-ok'>;
        const epoch = link.adminEpoch;
        received.push(this.#leaseOf(queue, reply.properties, reply.body, method.redelivered, {
          queue,
          deliveryTag: method.deliveryTag,
          // A closed admin channel gave its deliveries back.
          isCurrent: () => !link.isClosed && link.adminEpoch === epoch,
          settle: (settle) => void link.cast(settle).catch(() => {}),
        }));
      }
      const left = deadline - Date.now();
      if (received.length > 0 || left <= 0) return received;
      await sleep(Math.min(pause, left), undefined, { signal }).catch(() => {});
    }
  }

  /**
   * The messages of `queue` pushed by basic.consume with a prefetch of
   * `prefetch`, as consume() pulls them (consumer.ts); their receipts
   * settle on the subscription's own channel.
   */
  pushSource(queue: string, prefetch: number): PushSource<ReceivedMessage> {
    return new PushedMessages(() => this.#connected(), queue, prefetch,
      (delivery: PushedDelivery, from: AmqpSubscription) =>
        this.#leaseOf(queue, delivery.properties, delivery.body, delivery.redelivered, {
          queue,
          deliveryTag: delivery.deliveryTag,
          isCurrent: () => from.isOpen,
          settle: (settle) => from.settle(settle),
        }));
  }

  async ack(queue: string, receipts: string | readonly string[]): Promise<AckResult> {
    await this.#connected();
    const results = this.#settle('ack', queue, receipts, (deliveryTag) => ({
      name: 'basic.ack', deliveryTag, multiple: false,
    }));
    return { acked: results.filter(Boolean).length, results };
  }

  async nack(queue: string, receipt: string, options: NackOptions = {}): Promise<void> {
    if (options.delayMs !== undefined) throw unsupported('nack', 'delayMs');
    await this.#connected();
    this.#settle('nack', queue, receipt, (deliveryTag) => ({
      name: 'basic.nack', deliveryTag, multiple: false, requeue: options.requeue ?? true,
    }));
  }

  /** basic.reject with requeue: ready at once, but the attempt counts (AMQP). */
  async release(queue: string, receipts: string[]): Promise<number> {
    await this.#connected();
    const results = this.#settle('release', queue, receipts, (deliveryTag) => ({
      name: 'basic.reject', deliveryTag, requeue: true,
    }));
    return results.filter(Boolean).length;
  }

  extend(): Promise<number> {
    return Promise.reject(unsupported('extend', 'leases (AMQP has none to extend)'));
  }

  /**
   * Settles current receipts; one receipt that is not current throws
   * RECEIPT_NOT_FOUND, in a list it answers false (as over HTTP).
   */
  #settle(
    method: string,
    queue: string,
    receipts: string | readonly string[],
    settle: (deliveryTag: number) => Method,
  ): boolean[] {
    const list = typeof receipts === 'string' ? [receipts] : receipts;
    const results = list.map((receipt) => {
      const lease = this.#leased.get(receipt);
      if (lease === undefined || lease.queue !== queue) return false;
      this.#leased.delete(receipt);
      // The channel closed since: the broker gave the message back.
      if (!lease.isCurrent()) return false;
      lease.settle(settle(lease.deliveryTag));
      return true;
    });
    if (typeof receipts === 'string' && !results[0]) {
      throw new UsherClientError('RECEIPT_NOT_FOUND', 404,
        `${method}: receipt "${receipts}" is not a current lease on queue "${queue}"`,
        { field: 'receipt' });
    }
    return results;
  }

  #leaseOf(
    queue: string,
    properties: AmqpReply['properties'],
    body: Buffer,
    redelivered: boolean,
    lease: Lease,
  ): ReceivedMessage {
    const receipt = `amqp.${++this.#receipts}`;
    this.#leased.set(receipt, lease);
    const delivery = decodeDelivery(properties, body, redelivered);
    const { [ID_HEADER]: id, ...headers } = delivery.headers;
    const now = Date.now();
    return {
      id: id ?? properties.messageId ?? receipt,
      queue,
      receipt,
      body: delivery.body,
      headers,
      priority: delivery.priority,
      group: null,
      attempt: delivery.attempt,
      redelivered,
      publishedAt: properties.timestamp === undefined
        ? now : Number(properties.timestamp) * 1000,
      leaseDeadline: now + LEASE_MS,
    };
  }

  // --- queues -------------------------------------------------------------

  async createQueue(name: string, settings: QueueSettingsInput = {}): Promise<CreateQueueResult> {
    const link = await this.#connected();
    const args = argumentsOf(settings);
    // Over HTTP a missing dead-letter queue is made, keeping its messages.
    if (settings.deadLetter) await declare(link, settings.deadLetter, {}, false);
    const existed = await exists(link, name);
    await declare(link, name, args, false);
    return {
      created: !existed,
      get queue(): never {
        throw unsupported('createQueue', 'the queue\'s info (read it over HTTP)');
      },
    };
  }

  async purgeQueue(name: string): Promise<number> {
    const link = await this.#connected();
    const reply = await link.call({ name: 'queue.purge', queue: name, noWait: false },
      ['queue.purge-ok']);
    return (reply.method as MethodOf<'queue.purge-ok'>).messageCount;
  }

  async deleteQueue(name: string): Promise<void> {
    const link = await this.#connected();
    // AMQP answers delete-ok for a queue that is not there; HTTP says 404.
    if (!(await exists(link, name))) {
      throw new UsherClientError('QUEUE_NOT_FOUND', 404, `queue "${name}" does not exist`);
    }
    await link.call({ name: 'queue.delete', queue: name, ifUnused: false, ifEmpty: false,
      noWait: false }, ['queue.delete-ok']);
  }

  /** Drops the connection: the broker gives unacked messages back at once. */
  abort(): void {
    this.#ended = true;
    const link = this.#link;
    this.#link = null;
    void link?.then((open) => open.destroy(), () => {});
  }

  async close(): Promise<void> {
    this.#ended = true;
    const link = this.#link;
    this.#link = null;
    if (link !== null) await (await link.catch(() => null))?.close();
  }

  #connected(): Promise<UsherAmqpClient> {
    if (this.#ended) {
      return Promise.reject(new UsherClientError(CLIENT_ERROR_CODES.CONNECTION_FAILED, 0,
        `the client for ${this.url} was closed`));
    }
    // A connection the broker or the network ended is replaced on next
    // use, as HTTP would open a new one. Its publishes in flight were
    // OUTCOME_UNKNOWN, its receipts are stale: the broker gave those back.
    if (this.#open?.isClosed === true) {
      this.#link = null;
      this.#open = null;
    }
    this.#link ??= UsherAmqpClient.open(this.url).then(
      (link) => {
        this.#open = link;
        return link;
      },
      (err: unknown) => {
        this.#link = null;
        throw err;
      },
    );
    return this.#link;
  }
}

/** What AMQP cannot express, named by the method that was asked. */
export function unsupported(method: string, what: string): UsherClientError {
  return new UsherClientError(CLIENT_ERROR_CODES.UNSUPPORTED, 0,
    `${method}() over AMQP cannot express ${what}; use the HTTP API (http://...)`,
    { field: method });
}

// --- helpers ------------------------------------------------------------------

function checkPublish(method: string, message: OutgoingMessage, field: string): void {
  checkBody(message.body, field);
  if (message.group !== undefined && message.group !== null) {
    throw unsupported(method, 'FIFO groups (group)');
  }
  if (message.delayMs !== undefined) throw unsupported(method, 'delays (delayMs)');
}

function checkRange(field: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsherClientError(CLIENT_ERROR_CODES.INVALID_ARGUMENT, 0,
      `${field} must be an integer from ${min} to ${max}, got ${value}`, { field });
  }
}

function aborted(queue: string): UsherClientError {
  return new UsherClientError(CLIENT_ERROR_CODES.ABORTED, 0,
    `receive from "${queue}" was aborted`);
}

/** Usher's settings as the queue.declare arguments the broker reads. */
/** Usher's default backoff (src/engine/types.ts), which HTTP queues get. */
const HTTP_BACKOFF = { initialMs: 1_000, multiplier: 2, maxMs: 60_000, jitter: 0.1 };

function argumentsOf(settings: QueueSettingsInput): Record<string, PlainValue> {
  const args: Record<string, PlainValue> = {
    // Over HTTP a queue retries 10 times unless told otherwise.
    'x-usher-max-attempts': settings.maxAttempts ?? 10,
  };
  if (settings.fifo !== undefined) args['x-usher-fifo'] = settings.fifo;
  if (settings.visibilityTimeoutMs !== undefined) {
    args['x-usher-visibility-timeout'] = settings.visibilityTimeoutMs;
  }
  if (settings.messageTtlMs !== undefined && settings.messageTtlMs !== null) {
    args['x-message-ttl'] = settings.messageTtlMs;
  }
  if (settings.dedupWindowMs !== undefined) args['x-usher-dedup-window'] = settings.dedupWindowMs;
  if (settings.deadLetter) {
    args['x-dead-letter-exchange'] = '';
    args['x-dead-letter-routing-key'] = settings.deadLetter;
  }
  // Over HTTP a failed message waits 1 s before its retry, doubling; over
  // AMQP a queue has no backoff unless told, so it is told here.
  const backoff = { ...HTTP_BACKOFF, ...settings.backoff };
  args['x-usher-backoff-initial'] = backoff.initialMs;
  args['x-usher-backoff-max'] = backoff.maxMs;
  args['x-usher-backoff-multiplier'] = backoff.multiplier;
  args['x-usher-backoff-jitter'] = backoff.jitter;
  return args;
}

async function declare(
  link: UsherAmqpClient,
  queue: string,
  args: Record<string, PlainValue>,
  passive: boolean,
): Promise<void> {
  await link.call({
    name: 'queue.declare', queue, passive, durable: true, exclusive: false,
    autoDelete: false, noWait: false, arguments: tableFrom(args),
  }, ['queue.declare-ok']);
}

async function exists(link: UsherAmqpClient, queue: string): Promise<boolean> {
  try {
    await declare(link, queue, {}, true);
    return true;
  } catch (err) {
    if (err instanceof UsherClientError && err.code === 'QUEUE_NOT_FOUND') return false;
    throw err;
  }
}
