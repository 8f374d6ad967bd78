// One AMQP channel: queues and exchanges declared through it (their
// methods are in channel-topology.ts), publishes (with confirms, in
// channel-publishing.ts), consumers (with prefetch), acks, nacks and
// gets (in channel-deliveries.ts), all turned into broker calls. Methods
// run, and are answered, in the order they came (method-order.ts); this
// file dispatches them, keeps that order, and closes the channel.

import { ChannelDeliveries, type Unacked } from './channel-deliveries.js';
import { ChannelPublishing } from './channel-publishing.js';
import { ChannelTopology } from './channel-topology.js';
import { REPLY } from './constants.js';
import type { AmqpConnection } from './connection.js';
import type { ContentHeader } from './content.js';
import { ReplyConsumer } from './direct-reply.js';
import { AmqpError } from './errors.js';
import type { FieldTable } from './field-table.js';
import { type Incoming, bodyOf } from './incoming.js';
import { MethodOrder, channelErrorOf, seesMessages } from './method-order.js';
import type { Method, MethodName } from './methods.js';
import { ChannelTransactions, type SettleHow } from './tx.js';

export class AmqpChannel {
  /** Methods sent without waiting run one after another here. */
  private readonly order = new MethodOrder(
    () => this.closed,
    (err, at) => this.fail(err, at),
  );
  private closed = false;

  /** Publishes, from basic.publish to their confirms (channel-publishing.ts). */
  private readonly publishing: ChannelPublishing;
  /** Consumers, gets, acks and nacks (channel-deliveries.ts). */
  private readonly deliveries: ChannelDeliveries;

  /** confirm.select read, taken effect or still behind pending methods. */
  private confirmSelected = false;
  /** After tx.select, publishes and acks wait for tx.commit (tx.ts). */
  private readonly tx = new ChannelTransactions<Incoming, Unacked>({
    // What was asked: a confirm.select still queued counts (tx.select after it is refused).
    isConfirming: () => this.confirmSelected,
    inOrder: (run) => this.inOrder(run),
    send: (method) => this.send(method),
    publish: (incoming) => this.publishing.routePublish(incoming),
    check: (incoming) => {
      this.publishing.planPublish(incoming, bodyOf(incoming));
    },
    land: () => {
      this.flushPublishes();
      return this.publishing.landings.all();
    },
    settle: (entries, how) => {
      const landed = this.deliveries.settleEntries(entries, how);
      this.wake();
      return landed;
    },
    held: (bytes) => this.connection.heldBodies(bytes),
    unsettle: (tag, entry) => this.deliveries.unsettle(tag, entry),
  });
  private readonly queuesAndExchanges: ChannelTopology;
  /** The direct reply-to consumer, if any (direct-reply.ts). */
  private readonly replies: ReplyConsumer;

  constructor(
    private readonly connection: AmqpConnection,
    readonly number: number,
  ) {
    this.queuesAndExchanges = new ChannelTopology(connection, (method) => this.send(method));
    this.replies = new ReplyConsumer(connection.context.directReplies);
    this.publishing = new ChannelPublishing(connection, number, {
      replies: this.replies,
      tx: this.tx,
      closed: () => this.closed,
      pending: () => this.order.pending,
      inOrder: (run) => this.inOrder(run),
      send: (method) => this.send(method),
      fail: (err, at) => this.fail(err, at),
      flushAcks: () => this.deliveries.flushAcks(),
      confirmsAnswered: () => connection.confirmsAnswered(this),
    });
    this.deliveries = new ChannelDeliveries(connection, number, {
      replies: this.replies,
      tx: this.tx,
      closed: () => this.closed,
      send: (method) => this.send(method),
      fail: (err) => this.fail(err),
    });
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
        return this.publishing.startPublish(method);
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
        this.deliveries.flowActive = method.active;
        this.send({ name: 'channel.flow-ok', active: method.active });
        if (method.active) this.wake();
        return;
      default:
        // Publishes before a method that looks at a queue's messages land
        // first (a purge after a publish must see it), as RabbitMQ runs a
        // channel in order.
        this.flushPublishes();
        this.inOrder(async () => {
          if (seesMessages(method)) await this.publishing.landings.all();
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
      this.deliveries.settle(deliveryTag, multiple, how);
      return;
    }
    this.inOrder(() => {
      this.deliveries.settle(deliveryTag, multiple, how);
      // Past the end of the chunk that flushed the others.
      this.deliveries.flushAcks();
    }, at);
  }

  private selectConfirms(noWait: boolean): void {
    this.publishing.startConfirming();
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
        return this.deliveries.qos(method);
      case 'basic.consume':
        return this.deliveries.consume(method);
      case 'basic.cancel':
        return this.deliveries.cancel(method.consumerTag, !method.noWait);
      case 'basic.get':
        return this.deliveries.get(method);
      case 'basic.recover':
      case 'basic.recover-async':
        if (!method.requeue) {
          throw new AmqpError(REPLY.NOT_IMPLEMENTED, 'requeue=false', {
            classId: 60,
            methodId: 110,
          });
        }
        this.deliveries.requeueAll();
        if (method.name === 'basic.recover') this.send({ name: 'basic.recover-ok' });
        return;
      default:
        throw new AmqpError(
          REPLY.NOT_IMPLEMENTED,
          `${method.name} is not supported by Usher`,
        );
    }
  }

  // --- publishing (channel-publishing.ts) -----------------------------

  onHeader(header: ContentHeader): void {
    this.publishing.onHeader(header);
  }

  onBody(body: Buffer, last: boolean): void {
    this.publishing.onBody(body, last);
  }

  /**
   * Sends the publishes and acks gathered from one socket chunk to the
   * broker: one call (and one log record) per queue, not one per message.
   */
  flushPublishes(): void {
    this.publishing.flushPublishes();
  }

  /** The ack for every tag answered so far; the connection calls it. */
  sendAnsweredConfirms(): void {
    this.publishing.sendAnsweredConfirms();
  }

  // --- deliveries (channel-deliveries.ts) -----------------------------

  /** Lets consumers take more: credit grew or the socket drained. */
  wake(): void {
    this.deliveries.wake();
  }

  // --- closing --------------------------------------------------------

  /** The channel or its connection closed: stop consumers, requeue (C1). */
  release(): void {
    // Publishes read before the close or fault are the broker's.
    if (!this.closed) this.flushPublishes();
    this.deliveries.flushAcks();
    this.closed = true;
    this.deliveries.ackTimeout.stop();
    this.publishing.release();
    this.tx.release();
    this.replies.stop();
    this.deliveries.release();
    this.publishing.dropBatches();
  }

  private send(method: Method): void {
    if (!this.closed) this.connection.send(this.number, method);
  }
}

export type { FieldTable };
