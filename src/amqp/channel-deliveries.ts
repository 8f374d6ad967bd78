// The deliveries of an AMQP channel (channel.ts): consumers (with
// prefetch and channel.flow), direct reply-to consumers and basic.get
// hand messages out; basic.ack, nack, reject and recover settle them. A
// delivery held unacked too long closes the channel (ack-timeout.ts).
// Apart from channel.ts because delivering is a hot path of its own,
// read on its own when tuning it.

import { randomBytes } from 'node:crypto';

import { pinsLittle } from '../broker/messages.js';
import type {
  AckOptions,
  NackOptions,
  ReceivedMessage,
  Subscription,
} from '../broker/types.js';
import { AckTimeout } from './ack-timeout.js';
import { METHOD_IDS } from './access.js';
import { copyOf } from './channel-publishing.js';
import { allow, checkQueue } from './channel-topology.js';
import { REPLY } from './constants.js';
import type { AmqpConnection } from './connection.js';
import { consumerPriority } from './consumer-priority.js';
import type { BasicProperties } from './content.js';
import { LastProperties, propertiesOf } from './delivery-properties.js';
import { DeliveryTags } from './delivery-tags.js';
import { REPLY_QUEUE, type ReplyConsumer } from './direct-reply.js';
import { AmqpError, preconditionFailed } from './errors.js';
import { EXCHANGE_HEADER, ROUTING_KEY_HEADER } from './mapping.js';
import type { Method, MethodOf } from './methods.js';
import type { ChannelTransactions, SettleHow } from './tx.js';

/**
 * AMQP has no lease. A channel holding a delivery unacked for the consumer
 * timeout is closed (ack-timeout.ts), as RabbitMQ closes it, and the
 * message goes back then; the broker's lease runs a minute longer, so that
 * it never redelivers a message the channel still holds. It did, when the
 * lease was the timeout: the holder's channel stayed open, its later ack
 * was swallowed, and the message was processed twice (breaker session).
 */
const LEASE_MARGIN_MS = 60_000;
/** Deliveries handed to a no-ack consumer per turn while the socket drains. */
const NO_ACK_CREDIT = 256;

interface Consumer {
  tag: string;
  queue: string;
  noAck: boolean;
  exclusive: boolean;
  prefetch: number;
  unacked: number;
  subscription: Subscription | null;
  /** On an x-single-active-consumer queue: waits its turn. */
  singleActive: boolean;
}

export interface Unacked {
  queue: string;
  receipt: string;
  consumer: Consumer | null;
  /** Date.now() as it was delivered, for the consumer timeout. */
  deliveredAt: number;
}

/**
 * A basic.ack outside a transaction has no answer, so nobody waits for it
 * to be durable: its `settled` record is written at once and reaches the
 * disk with the next batch that syncs (a publish's, usually). It then
 * never holds up a publish's fdatasync, and a crash in between delivers
 * the message again, at-least-once, as RabbitMQ's classic queues do.
 * Acks in a transaction are durable before tx.commit-ok (tx.ts).
 */
const UNANSWERED_ACK: AckOptions = { synced: false };

/** How the broker takes each kind of nack (SettleHow, tx.ts). */
const NACK_OPTIONS: Record<Exclude<SettleHow, 'ack'>, NackOptions> = {
  retry: {},
  requeue: { delayMs: 0 },
  reject: { requeue: false },
};

/** What delivering needs of its channel. */
export interface ChannelDeliveriesDeps {
  /** The direct reply-to consumer, if any (direct-reply.ts). */
  readonly replies: ReplyConsumer;
  /** The channel's transaction, which holds acks until tx.commit (tx.ts). */
  readonly tx: Pick<ChannelTransactions<unknown, Unacked>, 'active' | 'holdSettlement'>;
  closed(): boolean;
  send(method: Method): void;
  /** Closes the channel (or the connection) with `err`. */
  fail(err: unknown): void;
}

export class ChannelDeliveries {
  /** Receipts acked in one socket chunk, per queue: settled together. */
  private readonly pendingAcks = new Map<string, string[]>();

  private deliveryTag = 0;
  private readonly deliverMethod: MethodOf<'basic.deliver'> = {
    name: 'basic.deliver',
    consumerTag: '',
    deliveryTag: 0,
    redelivered: false,
    exchange: '',
    routingKey: '',
  };
  private readonly lastProperties = new LastProperties();
  private readonly unacked = new DeliveryTags<Unacked>();
  private readonly consumers = new Map<string, Consumer>();
  private consumerPrefetch = 0;
  /** Closes the channel when it holds a delivery too long (ack-timeout.ts). */
  readonly ackTimeout: AckTimeout;
  private channelPrefetch = 0;
  /** channel.flow: false stops deliveries to consumers until true. */
  flowActive = true;
  private wakeScheduled = false;

  constructor(
    private readonly connection: AmqpConnection,
    private readonly number: number,
    private readonly deps: ChannelDeliveriesDeps,
  ) {
    this.ackTimeout = new AckTimeout({
      number,
      deliveryTimes: () => this.unacked.values().map((entry) => entry.deliveredAt),
      fail: (error) => this.deps.fail(error),
    }, connection.context.consumerTimeoutMs);
  }

  private get broker() {
    return this.connection.broker;
  }

  private get topology() {
    return this.connection.context.topology;
  }

  // --- consuming ------------------------------------------------------

  qos(method: MethodOf<'basic.qos'>): void {
    // A limit in bytes is not kept (nor by RabbitMQ, which refuses it
    // alike); taken and ignored, it let a consumer think it had one.
    if (method.prefetchSize !== 0) {
      throw new AmqpError(REPLY.NOT_IMPLEMENTED, `prefetch_size!=0 (${method.prefetchSize})`);
    }
    // RabbitMQ's reading: global=true is one limit for the whole channel,
    // global=false one for each consumer. Unlike RabbitMQ, global=false
    // also changes the limit of the channel's consumers already running,
    // not only of those started after it (as LavinMQ does). Clients that
    // take the spec's reading of global=false, one limit for the channel,
    // raise it as they hold messages: kombu does so for any broker not
    // named RabbitMQ, and a Celery worker holding a delayed (eta,
    // countdown, retry) task stopped taking others while RabbitMQ's
    // reading left its consumer at the old limit.
    if (method.global) {
      this.channelPrefetch = method.prefetchCount;
    } else {
      this.consumerPrefetch = method.prefetchCount;
      for (const consumer of this.consumers.values()) consumer.prefetch = method.prefetchCount;
    }
    this.deps.send({ name: 'basic.qos-ok' });
    this.wake();
  }

  consume(method: MethodOf<'basic.consume'>): void {
    if (method.queue === REPLY_QUEUE) {
      this.consumeReplies(method);
      return;
    }
    allow(this.connection, 'consume', 'queue', method.queue, METHOD_IDS.basicConsume);
    checkQueue(this.connection, method.queue);
    const limit = this.connection.context.maxConsumersPerQueue;
    if (this.topology.consumerCount(method.queue) >= limit) {
      throw preconditionFailed(`queue '${method.queue}' has ${limit} consumers, the limit`);
    }
    const tag = this.newConsumerTag(method.consumerTag);
    const priority = consumerPriority(method.arguments, method.queue);

    this.topology.addConsumer(method.queue, method.exclusive);
    const consumer: Consumer = {
      tag,
      queue: method.queue,
      noAck: method.noAck,
      exclusive: method.exclusive,
      prefetch: this.consumerPrefetch,
      unacked: 0,
      subscription: null,
      singleActive: this.topology.featuresOf(method.queue).singleActiveConsumer === true,
    };
    this.consumers.set(tag, consumer);
    if (consumer.singleActive) {
      this.topology.singleActive.join(consumer.queue, consumer, () =>
        consumer.subscription?.wake());
    }
    // consume-ok must reach the client before the first delivery.
    if (!method.noWait) this.deps.send({ name: 'basic.consume-ok', consumerTag: tag });

    consumer.subscription = this.broker.subscribe(method.queue, {
      leaseMs: this.leaseMs,
      credit: () => this.creditOf(consumer),
      deliver: (messages) => this.deliver(consumer, messages),
      cancelled: () => this.cancelledByBroker(consumer),
      priority,
    });
  }

  /** The tag the client asked for, or one made up; never one in use on this channel. */
  private newConsumerTag(asked: string): string {
    const tag = asked === '' ? `amq.ctag-${randomBytes(12).toString('base64url')}` : asked;
    if (this.consumers.has(tag) || this.deps.replies.owns(tag)) {
      throw new AmqpError(REPLY.NOT_ALLOWED, `attempt to reuse consumer tag '${tag}'`);
    }
    return tag;
  }

  /**
   * basic.consume from amq.rabbitmq.reply-to (direct-reply.ts): no queue
   * and no acks; replies are sent as they are published.
   */
  private consumeReplies(method: MethodOf<'basic.consume'>): void {
    this.deps.replies.check(method.noAck);
    const tag = this.newConsumerTag(method.consumerTag);
    this.deps.replies.start(tag, (routingKey, properties, body) =>
      this.takeReply(tag, routingKey, properties, body));
    if (!method.noWait) this.deps.send({ name: 'basic.consume-ok', consumerTag: tag });
  }

  /** A reply to this channel's reply name, published on any connection. */
  private takeReply(tag: string, routingKey: string, properties: BasicProperties,
    body: Buffer): boolean {
    // A client that does not read its replies gets no more of them once
    // 4 MiB wait for its socket, as a consumer gets no more deliveries: a
    // reply is never queued, so it is unroutable then (returned if
    // mandatory) rather than held without bound.
    if (this.deps.closed() || !this.connection.roomForDeliveries()) return false;
    const method: MethodOf<'basic.deliver'> = {
      name: 'basic.deliver',
      consumerTag: tag,
      deliveryTag: this.deliveryTag + 1,
      redelivered: false,
      exchange: '',
      routingKey,
    };
    try {
      // A view of the publisher's socket chunk would stay pinned until
      // this client reads it; one that is most of its chunk may.
      this.connection.sendContent(this.number, method, properties,
        pinsLittle(body) ? body : copyOf(body));
    } catch {
      // Properties too large for this client's frame_max: as if gone.
      return false;
    }
    // The tag is the next one, but not taken: nothing acks a reply, and
    // RabbitMQ 3.10 gives the delivery after it the same tag.
    return true;
  }

  private creditOf(consumer: Consumer): number {
    if (this.deps.closed() || !this.flowActive || !this.connection.roomForDeliveries()) return 0;
    if (consumer.singleActive && !this.topology.singleActive.isActive(consumer.queue, consumer)) {
      return 0;
    }
    if (consumer.noAck) return NO_ACK_CREDIT;
    const own = consumer.prefetch === 0 ? Infinity : consumer.prefetch - consumer.unacked;
    const shared =
      this.channelPrefetch === 0 ? Infinity : this.channelPrefetch - this.unacked.size;
    return Math.min(own, shared);
  }

  private deliver(consumer: Consumer, messages: ReceivedMessage[]): void {
    // Made only when needed: with manual acks and messages that fit, the
    // common case, a delivery leaves nothing for afterwards.
    let settleNow: string[] | null = null;
    let unsendable: string[] | null = null;
    let failure: unknown = null;

    // One method object for every delivery: sendContent encodes it at once.
    const method = this.deliverMethod;
    method.consumerTag = consumer.tag;
    const deliveredAt = Date.now();
    for (const message of messages) {
      method.deliveryTag = this.deliveryTag + 1;
      method.redelivered = message.redelivered;
      method.exchange = message.headers[EXCHANGE_HEADER] ?? '';
      method.routingKey = message.headers[ROUTING_KEY_HEADER] ?? consumer.queue;
      try {
        const properties = this.lastProperties.of(message);
        this.connection.sendContent(this.number, method, properties, message.body);
      } catch (err) {
        // Headers too large for this client's frame-max: the message goes
        // back untouched and this channel closes; nothing else suffers.
        (unsendable ??= []).push(message.receipt);
        failure ??= err;
        continue;
      }
      const deliveryTag = ++this.deliveryTag;
      if (consumer.noAck) (settleNow ??= []).push(message.receipt);
      else {
        this.unacked.set(deliveryTag, {
          queue: consumer.queue,
          receipt: message.receipt,
          consumer,
          deliveredAt,
        });
        consumer.unacked++;
      }
    }
    this.ackTimeout.arm();

    if (settleNow === null && unsendable === null) return;
    const acked = settleNow;
    const refused = unsendable;
    // Outside the broker's call into us, which must not call back in.
    queueMicrotask(() => {
      if (acked !== null)
        void this.broker.ack(consumer.queue, acked, UNANSWERED_ACK).catch(() => {});
      if (refused !== null) {
        this.broker.release(consumer.queue, refused);
        this.deps.fail(
          new AmqpError(
            REPLY.FRAME_ERROR,
            `a message on '${consumer.queue}' does not fit frame_max ${this.connection.frameMax}`,
            { cause: failure },
          ),
        );
      }
    });
  }

  /** The broker's lease of a delivery: see LEASE_MARGIN_MS. */
  private get leaseMs(): number {
    return this.connection.context.consumerTimeoutMs + LEASE_MARGIN_MS;
  }

  async get(method: MethodOf<'basic.get'>): Promise<void> {
    allow(this.connection, 'consume', 'queue', method.queue, METHOD_IDS.basicGet);
    checkQueue(this.connection, method.queue);
    this.topology.queueUsed(method.queue);
    const [message] = await this.broker.receive(method.queue, {
      max: 1,
      waitMs: 0,
      visibilityTimeoutMs: this.leaseMs,
    });
    if (message === undefined) {
      this.deps.send({ name: 'basic.get-empty' });
      return;
    }
    const deliveryTag = ++this.deliveryTag;
    if (method.noAck) await this.broker.ack(method.queue, [message.receipt]);
    else {
      this.unacked.set(deliveryTag, {
        queue: method.queue,
        receipt: message.receipt,
        consumer: null,
        deliveredAt: Date.now(),
      });
      this.ackTimeout.arm();
    }

    this.connection.sendContent(
      this.number,
      {
        name: 'basic.get-ok',
        deliveryTag,
        redelivered: message.redelivered,
        exchange: message.headers[EXCHANGE_HEADER] ?? '',
        routingKey: message.headers[ROUTING_KEY_HEADER] ?? method.queue,
        messageCount: this.broker.getQueue(method.queue).stats.ready,
      },
      propertiesOf(message),
      message.body,
    );
  }

  cancel(tag: string, reply: boolean): void {
    const consumer = this.consumers.get(tag);
    if (consumer !== undefined) this.dropConsumer(consumer);
    if (this.deps.replies.owns(tag)) this.deps.replies.stop();
    if (reply) this.deps.send({ name: 'basic.cancel-ok', consumerTag: tag });
  }

  /** The queue went away: tell the client (consumer_cancel_notify). */
  private cancelledByBroker(consumer: Consumer): void {
    if (!this.consumers.has(consumer.tag)) return;
    this.consumers.delete(consumer.tag);
    consumer.subscription = null;
    if (this.connection.cancelNotify) {
      this.deps.send({ name: 'basic.cancel', consumerTag: consumer.tag, noWait: true });
    }
  }

  private dropConsumer(consumer: Consumer): void {
    consumer.subscription?.cancel();
    consumer.subscription = null;
    this.consumers.delete(consumer.tag);
    if (consumer.singleActive) this.topology.singleActive.leave(consumer.queue, consumer);
    void this.topology.consumerRemoved(consumer.queue, consumer.exclusive);
  }

  /** Lets consumers take more: credit grew or the socket drained. */
  wake(): void {
    if (this.wakeScheduled) return;
    this.wakeScheduled = true;
    // Once per turn, and once per queue: waking one subscription makes the
    // broker serve all of that queue's subscribers, so waking each of
    // thousands of consumers would walk them thousands of times.
    setImmediate(() => {
      this.wakeScheduled = false;
      const queues = new Map<string, Subscription>();
      for (const consumer of this.consumers.values()) {
        if (consumer.subscription !== null)
          queues.set(consumer.queue, consumer.subscription);
      }
      for (const subscription of queues.values()) subscription.wake();
    });
  }

  // --- settling -------------------------------------------------------

  settle(
    deliveryTag: number,
    multiple: boolean,
    how: SettleHow,
  ): void {
    if ((!multiple || deliveryTag !== 0) && !this.unacked.has(deliveryTag)) {
      throw preconditionFailed(`unknown delivery tag ${deliveryTag}`);
    }
    // The common case, one ack of one message, waits for the end of the
    // chunk with the others it came with (flushAcks); in a transaction it
    // waits for tx.commit instead, below.
    if (!multiple && how === 'ack' && !this.deps.tx.active) {
      const entry = this.unacked.get(deliveryTag)!;
      this.unacked.delete(deliveryTag);
      if (entry.consumer !== null) entry.consumer.unacked--;
      const receipts = this.pendingAcks.get(entry.queue);
      if (receipts === undefined) this.pendingAcks.set(entry.queue, [entry.receipt]);
      else receipts.push(entry.receipt);
      return;
    }
    const tags = multiple
      ? [...this.unacked.keys()].filter((tag) => deliveryTag === 0 || tag <= deliveryTag)
      : [deliveryTag];

    const entries: Array<[number, Unacked]> = [];
    for (const tag of tags) {
      const entry = this.unacked.get(tag);
      if (entry === undefined) continue;
      this.unacked.delete(tag);
      entries.push([tag, entry]);
    }
    // In a transaction the consumer's prefetch frees at commit (RabbitMQ).
    if (this.deps.tx.active) {
      this.deps.tx.holdSettlement(how, entries);
      return;
    }
    void this.settleEntries(entries, how, UNANSWERED_ACK);
    // The broker serves the acked queue's subscribers itself; only a
    // channel-wide prefetch frees credit on this channel's other queues.
    if (this.channelPrefetch > 0) this.wake();
  }

  /** Settles once every settlement is durable (or came to nothing). */
  settleEntries(
    entries: Array<[number, Unacked]>,
    how: SettleHow,
    ackOptions?: AckOptions,
  ): Promise<unknown> {
    const byQueue = new Map<string, string[]>();
    for (const [, entry] of entries) {
      if (entry.consumer !== null) entry.consumer.unacked--;
      const receipts = byQueue.get(entry.queue) ?? [];
      receipts.push(entry.receipt);
      byQueue.set(entry.queue, receipts);
    }
    return Promise.all(
      [...byQueue].map(([queue, receipts]) =>
        this.settleReceipts(queue, receipts, how, ackOptions)),
    );
  }

  flushAcks(): void {
    if (this.pendingAcks.size === 0) return;
    for (const [queue, receipts] of this.pendingAcks) {
      void this.settleReceipts(queue, receipts, 'ack', UNANSWERED_ACK);
    }
    this.pendingAcks.clear();
    if (this.channelPrefetch > 0) this.wake();
  }

  private settleReceipts(
    queue: string,
    receipts: string[],
    how: SettleHow,
    ackOptions?: AckOptions,
  ): Promise<unknown> {
    const done =
      how === 'ack'
        ? this.broker.ack(queue, receipts, ackOptions)
        : this.broker.nackMany(queue, receipts, NACK_OPTIONS[how]);
    // A lease that ran out (consumer timeout) or a deleted queue: nothing to do.
    return done.catch(() => {});
  }

  /** Everything unacked goes back, redelivered with the attempt raised. */
  requeueAll(): void {
    const byQueue = new Map<string, string[]>();
    for (const entry of this.unacked.values()) {
      if (entry.consumer !== null) entry.consumer.unacked--;
      const receipts = byQueue.get(entry.queue) ?? [];
      receipts.push(entry.receipt);
      byQueue.set(entry.queue, receipts);
    }
    this.unacked.clear();
    for (const [queue, receipts] of byQueue)
      void this.settleReceipts(queue, receipts, 'requeue');
  }

  /**
   * A delivery whose ack, nack or reject a transaction held is unacked
   * again (tx.rollback, or the channel closed before tx.commit).
   */
  unsettle(tag: number, entry: Unacked): void {
    this.unacked.set(tag, entry);
    this.ackTimeout.arm();
  }

  // --- the channel closes ---------------------------------------------

  /** Consumers stop and every delivery still unacked goes back. */
  release(): void {
    // Its consumers stop taking first, and the next single active consumer
    // is woken only once their messages are back at the head, as RabbitMQ
    // requeues before it hands over: woken first, it took the messages
    // behind them (breaker session).
    const consumers = [...this.consumers.values()];
    for (const consumer of consumers) {
      consumer.subscription?.cancel();
      consumer.subscription = null;
    }
    this.requeueAll();
    for (const consumer of consumers) this.dropConsumer(consumer);
  }
}
