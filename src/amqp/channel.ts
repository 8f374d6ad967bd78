// One AMQP channel: queues and exchanges declared through it (their
// methods are in channel-topology.ts), publishes (with confirms),
// consumers (with prefetch), acks, nacks and gets, all turned into
// broker calls. Methods run, and are answered, in the order they came
// (method-order.ts).
//
// Publishes read from one socket chunk are handed to the broker together,
// one batch per queue, and confirmed when the batch is durable.

import { randomBytes } from 'node:crypto';

import { checkHeaders } from '../broker/checks.js';
import { logsMessages } from '../broker/durability.js';
import { pinsLittle } from '../broker/messages.js';
import { LoadRefusalError } from '../errors.js';
import type {
  AckOptions,
  NackOptions,
  PublishInput,
  ReceivedMessage,
  Subscription,
} from '../broker/types.js';
import { METHOD_IDS } from './access.js';
import { ChannelTopology, allow, checkQueue } from './channel-topology.js';
import { REPLY } from './constants.js';
import type { AmqpConnection } from './connection.js';
import { ConfirmTracker } from './confirms.js';
import { consumerPriority } from './consumer-priority.js';
import type { BasicProperties, ContentHeader } from './content.js';
import { LastProperties, propertiesOf } from './delivery-properties.js';
import { DeliveryTags } from './delivery-tags.js';
import { REPLY_QUEUE, ReplyConsumer, isReplyName } from './direct-reply.js';
import { AckTimeout } from './ack-timeout.js';
import { AmqpError, preconditionFailed } from './errors.js';
import { EMPTY_TABLE, type FieldTable } from './field-table.js';
import { type Incoming, addBodyFrame, bodyOf, clearIncoming, startIncoming } from './incoming.js';
import { Landings } from './landings.js';
import {
  EXCHANGE_HEADER,
  ROUTING_KEY_HEADER,
  checkTableLimits,
  checkTableRead,
  fromAmqp,
  type MappedPublish,
} from './mapping.js';
import { MethodOrder, channelErrorOf, seesMessages } from './method-order.js';
import type { Method, MethodName, MethodOf } from './methods.js';
import { routingKeysOf, withoutBcc } from './sender-selected.js';
import { ChannelTransactions, type SettleHow } from './tx.js';
import { checkUserId } from './user-id.js';

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

interface Unacked {
  queue: string;
  receipt: string;
  consumer: Consumer | null;
  /** Date.now() as it was delivered, for the consumer timeout. */
  deliveredAt: number;
}

/** planPublish's answer. */
interface PublishPlan {
  /** The keys it is routed by: its routing key, CC's and BCC's. */
  keys: string | string[];
  queues: readonly string[];
  properties: BasicProperties;
  input: MappedPublish | null;
}

interface QueueBatch {
  inputs: PublishInput[];
  tags: number[];
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

export class AmqpChannel {
  /** Methods sent without waiting run one after another here. */
  private readonly order = new MethodOrder(
    () => this.closed,
    (err, at) => this.fail(err, at),
  );
  private closed = false;

  private incoming: Incoming | null = null;
  /** The last publish routed, for the next one (not one a transaction holds). */
  private spareIncoming: Incoming | null = null;
  private batches = new Map<string, QueueBatch>();
  private spareBatches = new Map<string, QueueBatch>();
  /** Receipts acked in one socket chunk, per queue: settled together. */
  private readonly pendingAcks = new Map<string, string[]>();
  /** Publishes handed to the broker, until they land (or fail). */
  private readonly landings = new Landings();

  private confirming = false;
  /** confirm.select read, taken effect or still behind pending methods. */
  private confirmSelected = false;
  /** After tx.select, publishes and acks wait for tx.commit (tx.ts). */
  private readonly tx = new ChannelTransactions<Incoming, Unacked>({
    // What was asked: a confirm.select still queued counts (tx.select after it is refused).
    isConfirming: () => this.confirmSelected,
    inOrder: (run) => this.inOrder(run),
    send: (method) => this.send(method),
    publish: (incoming) => this.routePublish(incoming),
    check: (incoming) => {
      this.planPublish(incoming, bodyOf(incoming));
    },
    land: () => {
      this.flushPublishes();
      return this.landings.all();
    },
    settle: (entries, how) => {
      const landed = this.settleEntries(entries, how);
      this.wake();
      return landed;
    },
    held: (bytes) => this.connection.heldBodies(bytes),
    unsettle: (tag, entry) => {
      this.unacked.set(tag, entry);
      this.ackTimeout.arm();
    },
  });
  /** Publisher confirms, once confirm.select turned them on. */
  private readonly confirms = new ConfirmTracker((method) => this.send(method));
  private readonly queuesAndExchanges: ChannelTopology;

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
  private readonly plan: PublishPlan = { keys: '', queues: [], properties: {}, input: null };
  private readonly unacked = new DeliveryTags<Unacked>();
  private readonly consumers = new Map<string, Consumer>();
  /** The direct reply-to consumer, if any (direct-reply.ts). */
  private readonly replies: ReplyConsumer;
  private consumerPrefetch = 0;
  /** Publishes waiting behind pending methods (queuePublish), and their body bytes. */
  private readonly queued = { publishes: 0, bytes: 0 };
  /** Closes the channel when it holds a delivery too long (ack-timeout.ts). */
  private readonly ackTimeout: AckTimeout;
  private channelPrefetch = 0;
  private flowActive = true;
  private wakeScheduled = false;

  constructor(
    private readonly connection: AmqpConnection,
    readonly number: number,
  ) {
    this.queuesAndExchanges = new ChannelTopology(connection, (method) => this.send(method));
    this.replies = new ReplyConsumer(connection.context.directReplies);
    this.ackTimeout = new AckTimeout({
      number,
      deliveryTimes: () => this.unacked.values().map((entry) => entry.deliveredAt),
      fail: (error) => this.fail(error),
    }, connection.context.consumerTimeoutMs);
  }

  private get broker() {
    return this.connection.broker;
  }

  private get topology() {
    return this.connection.context.topology;
  }

  // --- dispatch -------------------------------------------------------

  onMethod(method: Method): void {
    try {
      this.dispatch(method);
    } catch (err) {
      // Refused as read: at once, or, behind methods still pending, in
      // its turn, so that they (and the publishes queued behind them)
      // run first, as RabbitMQ runs a channel in order.
      if (!this.order.pending) this.fail(err, method.name);
      else this.inOrder(() => Promise.reject(err), method.name);
    }
  }

  private dispatch(method: Method): void {
    switch (method.name) {
      case 'basic.publish':
        return this.startPublish(method);
      case 'basic.ack':
        return this.settleInTurn(method.name, method.deliveryTag, method.multiple, 'ack');
      case 'basic.nack':
        return this.settleInTurn(
          method.name,
          method.deliveryTag,
          method.multiple,
          method.requeue ? 'retry' : 'reject',
        );
      case 'basic.reject':
        return this.settleInTurn(
          method.name,
          method.deliveryTag,
          false,
          method.requeue ? 'requeue' : 'reject',
        );
      case 'channel.close':
        // Behind the methods before it, so that publishes queued behind
        // them (finishPublish) are routed, not dropped.
        if (this.order.pending) this.inOrder(() => this.closeByClient());
        else this.closeByClient();
        return;
      case 'tx.select':
      case 'tx.commit':
      case 'tx.rollback':
        return this.tx.onMethod(method.name);
      case 'confirm.select':
        this.tx.checkConfirmSelect();
        this.confirmSelected = true;
        if (!this.order.pending) {
          // At once: the publishes that follow in the same chunk count.
          this.selectConfirms(method.noWait);
        } else {
          // Behind the methods before it, as the publishes after it are
          // (finishPublish): those before it, routed later, must not count.
          this.inOrder(() => this.selectConfirms(method.noWait));
        }
        return;
      case 'channel.flow':
        this.flowActive = method.active;
        this.send({ name: 'channel.flow-ok', active: method.active });
        if (method.active) this.wake();
        return;
      default:
        // Publishes before a method that looks at a queue's messages land
        // first (a purge after a publish must see it), as RabbitMQ runs a
        // channel in order.
        this.flushPublishes();
        this.inOrder(async () => {
          if (seesMessages(method)) await this.landings.all();
          await this.onSyncMethod(method);
        }, method.name);
    }
  }

  // Publishes read before the close are kept, as RabbitMQ keeps them.
  private closeByClient(): void {
    this.flushPublishes();
    this.closed = true;
    this.connection.channelClosedByClient(this.number);
  }

  /**
   * The client closed the connection: the channel closes as at its
   * channel.close, behind the methods still pending (publishes queued
   * behind them are routed), with no answer.
   */
  closeWithConnection(): void {
    if (this.order.pending) this.inOrder(() => this.release());
    else this.release();
  }

  /** Runs `run` once the methods before it are done; a failure names `at`. */
  private inOrder(run: () => Promise<void> | void, at?: MethodName): void {
    this.order.run(run, at);
  }

  /**
   * An ack, nack or reject acts at once, the common case; behind methods
   * still pending, in its turn, as RabbitMQ runs a channel: an ack sent
   * with the basic.get before it settles what the get hands out, and one
   * sent after a basic.recover finds its delivery taken back.
   */
  private settleInTurn(
    at: MethodName,
    deliveryTag: number,
    multiple: boolean,
    how: SettleHow,
  ): void {
    if (!this.order.pending) {
      this.settle(deliveryTag, multiple, how);
      return;
    }
    this.inOrder(() => {
      this.settle(deliveryTag, multiple, how);
      // Past the end of the chunk that flushed the others.
      this.flushAcks();
    }, at);
  }

  private selectConfirms(noWait: boolean): void {
    this.confirming = true;
    if (!noWait) this.send({ name: 'confirm.select-ok' });
  }

  /** Closes the channel (or the connection) with `err`, at method `at`. */
  private fail(err: unknown, at?: MethodName): void {
    if (this.closed) return;
    // Publishes read before the fault are the broker's, as in RabbitMQ;
    // closing dropped the ones not yet handed over with this chunk.
    this.flushPublishes();
    const error = channelErrorOf(err, at);
    if (err instanceof AmqpError && error.scope === 'connection') {
      this.connection.closeWith(error, false);
      return;
    }
    // A broker refusal closes this channel only, whatever its code's scope
    // in the spec (a full disk's 506 among them), as RabbitMQ does.
    if (!(err instanceof AmqpError) && error.replyCode === REPLY.INTERNAL_ERROR) {
      this.connection.logger.error({ err }, 'channel method failed');
    }
    this.connection.closeChannel(this.number, error);
  }

  private async onSyncMethod(method: Method): Promise<void> {
    switch (method.name) {
      case 'queue.declare':
      case 'queue.bind':
      case 'queue.unbind':
      case 'queue.purge':
      case 'queue.delete':
      case 'exchange.declare':
      case 'exchange.delete':
      case 'exchange.bind':
      case 'exchange.unbind':
        return this.queuesAndExchanges.run(method);
      case 'basic.qos':
        return this.qos(method);
      case 'basic.consume':
        return this.consume(method);
      case 'basic.cancel':
        return this.cancel(method.consumerTag, !method.noWait);
      case 'basic.get':
        return this.get(method);
      case 'basic.recover':
      case 'basic.recover-async':
        if (!method.requeue) {
          throw new AmqpError(REPLY.NOT_IMPLEMENTED, 'requeue=false', {
            classId: 60,
            methodId: 110,
          });
        }
        this.requeueAll();
        if (method.name === 'basic.recover') this.send({ name: 'basic.recover-ok' });
        return;
      default:
        throw new AmqpError(
          REPLY.NOT_IMPLEMENTED,
          `${method.name} is not supported by Usher`,
        );
    }
  }

  // --- publishing -----------------------------------------------------

  private startPublish(method: MethodOf<'basic.publish'>): void {
    if (method.immediate) {
      throw new AmqpError(REPLY.NOT_IMPLEMENTED, 'immediate=true', {
        classId: 60,
        methodId: 40,
      });
    }
    this.incoming = startIncoming(this.spareIncoming, method);
    this.spareIncoming = null;
  }

  onHeader(header: ContentHeader): void {
    if (this.incoming === null) return;
    this.incoming.properties = header.properties;
    if (header.bodySize === 0) this.finishPublish();
  }

  onBody(body: Buffer, last: boolean): void {
    const incoming = this.incoming;
    if (incoming === null) return;
    addBodyFrame(incoming, body);
    if (!last) {
      this.connection.heldBodies(body.length);
      return;
    }
    if (incoming.received > body.length) {
      this.connection.heldBodies(body.length - incoming.received);
    }
    this.finishPublish();
  }

  private finishPublish(): void {
    const incoming = this.incoming;
    this.incoming = null;
    if (incoming === null || this.closed) return;
    try {
      checkUserId(incoming.properties.userId, this.connection.principal);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (this.tx.active) {
      this.holdPublish(incoming);
    } else if (this.order.pending) {
      this.queuePublish(incoming);
    } else {
      this.routePublish(incoming);
      // Holds nothing of it from here: see dropInputBodies in flushPublishes.
      clearIncoming(incoming);
      this.spareIncoming = incoming;
    }
  }

  /** Routes a publish and adds it to this chunk's batches. */
  private routePublish(incoming: Incoming): void {
    const tag = this.confirming ? this.confirms.open() : 0;
    try {
      // A view of the socket chunk while the publish is in hand: the
      // broker copies it for a message it keeps in memory (a logged one
      // kept on disk only needs none), and a memory queue's message gets
      // a copy of its own below, so no chunk stays pinned.
      const body = bodyOf(incoming);
      const { keys, queues, properties, input } = this.planPublish(incoming, body);
      const replied = incoming.exchange === '' &&
        this.deliverReplies(keys, incoming.routingKey, properties, body);
      if (input === null) {
        if (!replied && incoming.mandatory) this.returnUnroutable(incoming, properties, body);
        if (tag > 0) this.confirm(tag, true);
        return;
      }

      if (tag > 0) this.confirms.waitFor(tag, queues.length);
      for (let i = 0; i < queues.length; i++) {
        const queue = queues[i];
        let batch = this.batches.get(queue);
        if (batch === undefined) {
          batch = { inputs: [], tags: [] };
          this.batches.set(queue, batch);
        }
        // A non-durable queue is a memory queue: no log frame takes over
        // the body, so it is copied rather than pinning the socket's chunk,
        // unless it pins little else (a body that arrived split across
        // chunks or frames is a copy of its own; see pinsLittle).
        const pinsMore = !this.topology.isDurable(queue) && !pinsLittle(body);
        batch.inputs.push(pinsMore ? withBody(input, copyOf(body)) : input);
        batch.tags.push(tag);
      }
      // Kept as a view somewhere: memory queues copy the others above,
      // and the broker copies the others it keeps in memory.
      if (pinsLittle(body)) this.connection.keepsBody(body);
    } catch (err) {
      // The channel's close is the answer, with the reason: no basic.nack
      // before it, as in RabbitMQ. With one, aio-pika raised a nack instead
      // of the 404 for a missing exchange, and php-amqp's waitForConfirm
      // returned quietly, so code that declares the exchange on a 404 and
      // tries again never ran (new user).
      this.fail(err, 'basic.publish');
    }
  }

  /**
   * Where a publish goes and what is stored, or the refusal it gets
   * (thrown), changing nothing: the queues it reaches, each allowed to
   * the user; its properties with BCC taken out; the broker's input,
   * null when it reaches no queue. A transaction checks each of its
   * publishes with it at tx.commit before handing any over (checkPublish).
   * One object, used again: this runs for every publish.
   */
  private planPublish(incoming: Incoming, body: Buffer): PublishPlan {
    const plan = this.plan;
    const sent = incoming.properties.headers ?? EMPTY_TABLE;
    checkTableRead(sent);
    // CC and BCC add routing keys; BCC is taken out before anything is
    // stored, routed on or returned (sender-selected.ts).
    const keys = routingKeysOf(incoming.routingKey, sent);
    plan.keys = keys;
    const headersTable = withoutBcc(sent);
    plan.properties = headersTable === sent
      ? incoming.properties
      : { ...incoming.properties, headers: headersTable };
    if (plan.properties.replyTo === REPLY_QUEUE) {
      plan.properties = { ...plan.properties, replyTo: this.replies.name() };
    }
    const queues = this.topology.route(incoming.exchange, keys, headersTable);
    plan.queues = queues;

    // One queue refused refuses the whole message: nothing is stored.
    // Indexed: for-of left an iterator result a queue in the profile.
    for (let i = 0; i < queues.length; i++) {
      allow(this.connection, 'publish', 'queue', queues[i], METHOD_IDS.basicPublish);
    }
    if (incoming.exchange === '') this.allowReplies(keys);
    if (queues.length === 0) {
      plan.input = null;
      return plan;
    }

    const input = fromAmqp(plan.properties, incoming.exchange, incoming.routingKey, body);
    // Checked here, not only in the broker: a refusal then closes the
    // channel with 406 and the reason, instead of a bare nack (C19).
    // The user's limits count the table as sent; the rest is Usher's.
    checkTableLimits(headersTable);
    checkHeaders(input.headers, 'headers', input.ownHeaders);
    plan.input = input;
    return plan;
  }

  /**
   * A reply is a publish to its reply name, so it needs the right to
   * publish to that name as to a queue's (a pattern such as
   * `amq.rabbitmq.reply-to.*`); RabbitMQ asks for write on the default
   * exchange. Any user could reply to a name it knew (breaker).
   */
  private allowReplies(keys: string | string[]): void {
    if (typeof keys === 'string') {
      this.allowReply(keys);
      return;
    }
    for (let i = 0; i < keys.length; i++) this.allowReply(keys[i]);
  }

  private allowReply(key: string): void {
    if (isReplyName(key)) allow(this.connection, 'publish', 'queue', key, METHOD_IDS.basicPublish);
  }

  /**
   * Hands a publish to the default exchange to the reply consumer of each
   * of its keys that is a reply name (direct-reply.ts), once a name, as
   * RabbitMQ does: CC and BCC keys too, whatever queues the others reach.
   * A reply CC'd to a queue was stored there alone (breaker). True when
   * one took it.
   */
  private deliverReplies(keys: string | string[], routingKey: string,
    properties: BasicProperties, body: Buffer): boolean {
    const replies = this.connection.context.directReplies;
    if (typeof keys === 'string') {
      return isReplyName(keys) && replies.deliver(keys, routingKey, properties, body);
    }
    let replied = false;
    let named: Set<string> | undefined;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      if (!isReplyName(key) || named?.has(key)) continue;
      (named ??= new Set()).add(key);
      if (replies.deliver(key, routingKey, properties, body)) replied = true;
    }
    return replied;
  }

  /**
   * Sends the publishes and acks gathered from one socket chunk to the
   * broker: one call (and one log record) per queue, not one per message.
   */
  flushPublishes(): void {
    this.flushAcks();
    if (this.batches.size === 0) return;
    // The two maps take turns, so that publishes routed while these are
    // handed over go to the next chunk's, without a copy of this one.
    const batches = this.batches;
    this.batches = this.spareBatches;
    this.copyBodiesOfUnkeptChunk(batches);

    for (const [queue, batch] of batches) {
      const count = batch.inputs.length;
      // Only the tags wait for the outcome, not the bodies.
      const tags = batch.tags;
      this.connection.publishesStarted(count);
      // Message by message: one refused under load or by a queue limit is
      // nacked alone. Unconfirmed, it is dropped (and counted) as RabbitMQ
      // drops it: such a publisher asked to hear nothing back.
      const landing = this.landings.start();
      this.broker.publishEach(queue, batch.inputs).then(
        (answers) => {
          try {
            this.connection.publishesSettled(count);
            for (let at = 0; at < answers.length; at++) {
              const tag = tags[at];
              if (tag > 0) this.settleConfirm(tag, !(answers[at] instanceof LoadRefusalError));
            }
            this.sendConfirmedAcks();
          } finally {
            this.landings.landed(landing);
          }
        },
        (err: unknown) => {
          try {
            this.connection.publishesSettled(count);
            this.confirmBatch(tags, false);
            // Without confirms the publisher would never hear of a failure.
            if (!this.confirming) this.fail(err);
          } finally {
            this.landings.landed(landing);
          }
        },
      );
    }
    // Only now: a message routed to several queues is one input in each.
    for (const batch of batches.values()) dropInputBodies(batch.inputs);
    batches.clear();
    this.spareBatches = batches;
  }

  // A body the chunk's other publishes mostly did not keep would hold the
  // rest of the chunk for as long as it waits (connection.pinsMostlyUnkept):
  // copied, once for all its queues. For a logged queue only one that
  // pinsLittle: the broker copies any other it keeps in memory and lets
  // it go once written if kept on disk only, and copying it here too cost
  // every small durable publish an allocation and a copy.
  private copyBodiesOfUnkeptChunk(batches: Map<string, QueueBatch>): void {
    let copies: Map<Buffer, Buffer> | undefined;
    for (const [queue, batch] of batches) {
      const inputs = batch.inputs;
      const brokerCopies = this.isLogged(queue);
      for (let i = 0; i < inputs.length; i++) {
        const body = inputs[i].body;
        if (brokerCopies && !pinsLittle(body)) continue;
        if (!this.connection.pinsMostlyUnkept(body)) continue;
        copies ??= new Map();
        let copy = copies.get(body);
        if (copy === undefined) copies.set(body, (copy = copyOf(body)));
        inputs[i] = withBody(inputs[i], copy);
      }
    }
  }

  /** Whether the broker logs `queue`'s messages (false for one gone). */
  private isLogged(queue: string): boolean {
    return this.broker.hasQueue(queue) && logsMessages(this.broker.settingsOf(queue));
  }

  private confirmBatch(tags: number[], ok: boolean): void {
    for (const tag of tags) if (tag > 0) this.settleConfirm(tag, ok);
    this.sendConfirmedAcks();
  }

  /** Settles one confirm tag for one of its queues and answers at once. */
  private confirm(tag: number, ok: boolean): void {
    this.settleConfirm(tag, ok);
    this.sendConfirmedAcks();
  }

  /** Settles one confirm tag for one of its queues (confirms.ts). */
  private settleConfirm(tag: number, ok: boolean): void {
    if (!this.closed) this.confirms.settle(tag, ok);
  }

  /**
   * Asks for one `multiple` ack for the tags answered so far, sent when
   * the connection next writes: publishes from several socket chunks land
   * with one fsync, and each landing answering at once sent an ack frame
   * apiece, for the client to read one by one.
   */
  private sendConfirmedAcks(): void {
    if (!this.closed) this.connection.confirmsAnswered(this);
  }

  /** The ack for every tag answered so far; the connection calls it. */
  sendAnsweredConfirms(): void {
    if (!this.closed) this.confirms.sendAcks();
  }

  private returnUnroutable(incoming: Incoming, properties: BasicProperties, body: Buffer): void {
    this.connection.sendContent(
      this.number,
      {
        name: 'basic.return',
        replyCode: REPLY.NO_ROUTE,
        replyText: 'NO_ROUTE',
        exchange: incoming.exchange,
        routingKey: incoming.routingKey,
      },
      properties,
      body,
    );
  }

  // --- consuming ------------------------------------------------------

  private qos(method: MethodOf<'basic.qos'>): void {
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
    this.send({ name: 'basic.qos-ok' });
    this.wake();
  }

  private consume(method: MethodOf<'basic.consume'>): void {
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
    if (!method.noWait) this.send({ name: 'basic.consume-ok', consumerTag: tag });

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
    if (this.consumers.has(tag) || this.replies.owns(tag)) {
      throw new AmqpError(REPLY.NOT_ALLOWED, `attempt to reuse consumer tag '${tag}'`);
    }
    return tag;
  }

  /**
   * basic.consume from amq.rabbitmq.reply-to (direct-reply.ts): no queue
   * and no acks; replies are sent as they are published.
   */
  private consumeReplies(method: MethodOf<'basic.consume'>): void {
    this.replies.check(method.noAck);
    const tag = this.newConsumerTag(method.consumerTag);
    this.replies.start(tag, (routingKey, properties, body) =>
      this.takeReply(tag, routingKey, properties, body));
    if (!method.noWait) this.send({ name: 'basic.consume-ok', consumerTag: tag });
  }

  /** A reply to this channel's reply name, published on any connection. */
  private takeReply(tag: string, routingKey: string, properties: BasicProperties,
    body: Buffer): boolean {
    // A client that does not read its replies gets no more of them once
    // 4 MiB wait for its socket, as a consumer gets no more deliveries: a
    // reply is never queued, so it is unroutable then (returned if
    // mandatory) rather than held without bound.
    if (this.closed || !this.connection.roomForDeliveries()) return false;
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
    if (this.closed || !this.flowActive || !this.connection.roomForDeliveries()) return 0;
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
        this.fail(
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

  private async get(method: MethodOf<'basic.get'>): Promise<void> {
    allow(this.connection, 'consume', 'queue', method.queue, METHOD_IDS.basicGet);
    checkQueue(this.connection, method.queue);
    this.topology.queueUsed(method.queue);
    const [message] = await this.broker.receive(method.queue, {
      max: 1,
      waitMs: 0,
      visibilityTimeoutMs: this.leaseMs,
    });
    if (message === undefined) {
      this.send({ name: 'basic.get-empty' });
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

  private cancel(tag: string, reply: boolean): void {
    const consumer = this.consumers.get(tag);
    if (consumer !== undefined) this.dropConsumer(consumer);
    if (this.replies.owns(tag)) this.replies.stop();
    if (reply) this.send({ name: 'basic.cancel-ok', consumerTag: tag });
  }

  /** The queue went away: tell the client (consumer_cancel_notify). */
  private cancelledByBroker(consumer: Consumer): void {
    if (!this.consumers.has(consumer.tag)) return;
    this.consumers.delete(consumer.tag);
    consumer.subscription = null;
    if (this.connection.cancelNotify) {
      this.send({ name: 'basic.cancel', consumerTag: consumer.tag, noWait: true });
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

  // --- transactions (tx.ts) -------------------------------------------

  /**
   * A publish read while methods before it still run (a declare waiting
   * for the topology journal's write) is routed after them, as a channel
   * runs its methods in order: routed at once, it met the topology from
   * before that declare or bind, and was confirmed and dropped, or
   * routed past an unbind. Held as one copy meanwhile, like a held
   * transaction's publish.
   */
  private queuePublish(incoming: Incoming): void {
    this.copyBody(incoming);
    const bytes = incoming.received;
    this.queued.publishes++;
    this.queued.bytes += bytes;
    // Counted as unanswered while queued, so that a client streaming
    // publishes behind a slow method is paused, and its bodies as held
    // (heldBodies), which bounds their bytes. Last: past that bound the
    // connection closes, and release() counts this one out too.
    this.connection.publishesStarted(1);
    this.connection.heldBodies(bytes);
    this.inOrder(() => {
      this.queued.publishes--;
      this.queued.bytes -= bytes;
      this.connection.publishesSettled(1);
      this.connection.heldBodies(-bytes);
      this.routePublish(incoming);
      this.flushPublishes();
    });
  }

  /** Held past this chunk: one copy, not views that pin socket chunks. */
  private copyBody(incoming: Incoming): void {
    const body = bodyOf(incoming);
    incoming.body = incoming.parts === null ? copyOf(body) : body;
    incoming.parts = null;
  }

  private holdPublish(incoming: Incoming): void {
    try {
      // Refused at once as RabbitMQ refuses it (a missing exchange, a
      // queue the user may not publish to, a CC that is no array, bad
      // headers), unless a method still pending may change that (a
      // declare, a bind): then at tx.commit, which checks every publish
      // before it hands any over (checkPublish) and runs in order.
      if (!this.order.pending) {
        this.planPublish(incoming, bodyOf(incoming));
        this.nameReplyTo(incoming);
      } else if (incoming.properties.replyTo === REPLY_QUEUE) {
        this.inOrder(() => this.nameReplyTo(incoming));
      }
      this.copyBody(incoming);
      this.tx.holdPublish(incoming, incoming.received);
    } catch (err) {
      this.fail(err);
    }
  }

  /**
   * A held publish asking for amq.rabbitmq.reply-to takes the reply name
   * as it is read (in its turn), as RabbitMQ names it: named at tx.commit,
   * a reply consumer cancelled in between refused the whole commit (406)
   * and stored nothing (breaker).
   */
  private nameReplyTo(incoming: Incoming): void {
    if (incoming.properties.replyTo !== REPLY_QUEUE) return;
    incoming.properties = { ...incoming.properties, replyTo: this.replies.name() };
  }

  // --- settling -------------------------------------------------------

  private settle(
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
    if (!multiple && how === 'ack' && !this.tx.active) {
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
    if (this.tx.active) {
      this.tx.holdSettlement(how, entries);
      return;
    }
    void this.settleEntries(entries, how, UNANSWERED_ACK);
    // The broker serves the acked queue's subscribers itself; only a
    // channel-wide prefetch frees credit on this channel's other queues.
    if (this.channelPrefetch > 0) this.wake();
  }

  /** Settles once every settlement is durable (or came to nothing). */
  private settleEntries(
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

  private flushAcks(): void {
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
  private requeueAll(): void {
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

  /** The channel or its connection closed: stop consumers, requeue (C1). */
  release(): void {
    // Publishes read before the close or fault are the broker's.
    if (!this.closed) this.flushPublishes();
    this.flushAcks();
    this.closed = true;
    this.ackTimeout.stop();
    // Publishes still queued behind methods will not run now (MethodOrder).
    if (this.queued.publishes > 0) {
      this.connection.publishesSettled(this.queued.publishes);
      this.connection.heldBodies(-this.queued.bytes);
      this.queued.publishes = 0;
      this.queued.bytes = 0;
    }
    // A publish cut short holds its body frames no more.
    if (this.incoming !== null && this.incoming.received > 0) {
      this.connection.heldBodies(-this.incoming.received);
    }
    this.incoming = null;
    this.tx.release();
    this.replies.stop();
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
    this.batches.clear();
  }

  private send(method: Method): void {
    if (!this.closed) this.connection.send(this.number, method);
  }
}

// --- helpers --------------------------------------------------------------

/**
 * Drops the bodies of inputs the broker has taken (publishEach reads them
 * only before it returns). An input that outlived two young-generation
 * collections is in old space, and until a full collection finds it dead
 * it keeps its body, and the socket chunk under it, from being collected
 * young: with 16 KiB bodies that made most chunks old garbage, and a full
 * collection every few thousand publishes (issue #4).
 */
function dropInputBodies(inputs: PublishInput[]): void {
  for (const input of inputs) input.body = EMPTY_BODY;
}

const EMPTY_BODY = Buffer.alloc(0);

/** `input` with another body; a literal, not a spread, for one object shape. */
function withBody(input: PublishInput, body: Buffer): PublishInput {
  return {
    id: input.id,
    body,
    headers: input.headers,
    ownHeaders: input.ownHeaders,
    priority: input.priority,
    ttlMs: input.ttlMs,
  };
}

/** A copy of `bytes` (faster than Buffer.from(buffer) on node 20). */
function copyOf(bytes: Buffer): Buffer {
  const copy = Buffer.allocUnsafe(bytes.length);
  bytes.copy(copy);
  return copy;
}

export type { FieldTable };
