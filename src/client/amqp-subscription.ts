// One consume() of connect('amqp://...') done the AMQP way: a channel of
// its own, basic.qos with the consumer's prefetch, basic.consume, and
// deliveries pushed by the broker and settled by delivery tag on that
// channel. stop() sends basic.cancel; closing the channel (or losing the
// connection) makes the broker give back whatever is still unacked,
// redelivered to whichever consumer comes next.
//
// PushSource turns those pushes into the pull the consume() loop makes
// (consumer.ts): next(max) answers what has arrived, waiting for the first.
// The prefetch bounds what can arrive, so the buffer never holds more than
// the consumer's concurrency; it is only non-empty while a handler that
// acked early (message.ack()) still runs.

import type { BasicProperties } from '../amqp/content.js';
import type { Inbound } from '../amqp/frame-decoder.js';
import type { Method, MethodOf } from '../amqp/methods.js';
import type { ChannelOwner, UsherAmqpClient } from './amqp.js';
import { CLIENT_ERROR_CODES, UsherClientError } from './errors.js';

/** A message as the broker pushed it, before the client's decoding. */
export interface PushedDelivery {
  deliveryTag: number;
  redelivered: boolean;
  properties: BasicProperties;
  body: Buffer;
}

interface Assembling {
  deliveryTag: number;
  redelivered: boolean;
  properties: BasicProperties;
  parts: Buffer[];
}

export class AmqpSubscription implements ChannelOwner {
  private channel = 0;
  private consumerTag = '';
  private open = false;
  private incoming: Assembling | null = null;

  private constructor(
    private readonly link: UsherAmqpClient,
    private readonly onDelivery: (delivery: PushedDelivery, from: AmqpSubscription) => void,
    private readonly onEnded: (error: UsherClientError, from: AmqpSubscription) => void,
  ) {}

  /** Opens the channel, sets the prefetch and starts consuming `queue`. */
  static async start(
    link: UsherAmqpClient,
    queue: string,
    prefetch: number,
    onDelivery: (delivery: PushedDelivery, from: AmqpSubscription) => void,
    onEnded: (error: UsherClientError, from: AmqpSubscription) => void,
  ): Promise<AmqpSubscription> {
    const subscription = new AmqpSubscription(link, onDelivery, onEnded);
    const channel = await link.openChannel(subscription);
    subscription.channel = channel;
    subscription.open = true;
    try {
      await link.callOn(channel, {
        name: 'basic.qos', prefetchSize: 0, prefetchCount: prefetch, global: false,
      }, ['basic.qos-ok']);
      const reply = await link.callOn(channel, {
        name: 'basic.consume', queue, consumerTag: '', noLocal: false, noAck: false,
        exclusive: false, noWait: false, arguments: new Map(),
      }, ['basic.consume-ok']);
      subscription.consumerTag = (reply.method as MethodOf<'basic.consume-ok'>).consumerTag;
    } catch (err) {
      subscription.open = false;
      await link.closeChannel(channel);
      throw err;
    }
    return subscription;
  }

  /** Whether delivery tags of this subscription can still be settled. */
  get isOpen(): boolean {
    return this.open && !this.link.isClosed;
  }

  /** basic.ack or basic.nack of one of this channel's delivery tags. */
  settle(method: Method): void {
    if (this.isOpen) this.link.castOn(this.channel, method);
  }

  /** No more deliveries; those unacked stay unacked until settled or closed. */
  async cancel(): Promise<void> {
    if (!this.isOpen) return;
    await this.link.callOn(this.channel, {
      name: 'basic.cancel', consumerTag: this.consumerTag, noWait: false,
    }, ['basic.cancel-ok']).catch(() => {});
  }

  /** Closes the channel: the broker requeues what is still unacked. */
  async close(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    await this.link.closeChannel(this.channel);
  }

  onFrame(frame: Inbound): void {
    if (frame.type === 'method') {
      const { method } = frame;
      if (method.name === 'basic.deliver') {
        this.incoming = {
          deliveryTag: method.deliveryTag,
          redelivered: method.redelivered,
          properties: {},
          parts: [],
        };
      } else if (method.name === 'basic.cancel') {
        // The queue was deleted (consumer_cancel_notify).
        this.onEnded(new UsherClientError('QUEUE_NOT_FOUND', 404,
          'the broker cancelled the consumer: its queue was deleted'), this);
      }
      return;
    }
    const incoming = this.incoming;
    if (incoming === null) return;
    if (frame.type === 'header') {
      incoming.properties = frame.header.properties;
      if (frame.header.bodySize > 0) return;
    } else if (frame.type === 'body') {
      // A view of the socket's chunk: copied, as it outlives this turn.
      incoming.parts.push(Buffer.from(frame.body));
      if (!frame.last) return;
    } else return;
    this.incoming = null;
    this.onDelivery({
      deliveryTag: incoming.deliveryTag,
      redelivered: incoming.redelivered,
      properties: incoming.properties,
      body: incoming.parts.length === 1 ? incoming.parts[0] : Buffer.concat(incoming.parts),
    }, this);
  }

  onClosed(error: UsherClientError): void {
    this.open = false;
    this.onEnded(error, this);
  }
}

/** What the consume() loop pulls from; see consumer.ts. */
export interface PushSource<T> {
  /** Up to `max` messages that arrived, waiting for the first. */
  next(max: number, signal: AbortSignal): Promise<T[]>;
  /** Cancels the consumer and gives back what arrived but was not handed out. */
  cancel(): Promise<void>;
  /** Closes the channel once the handlers have settled. */
  close(): Promise<void>;
}

/**
 * Subscribes on first use and again after the subscription ended (queue
 * deleted, channel or connection closed): that end is thrown from next()
 * once, so the loop reports it and backs off as it does over HTTP.
 */
export class PushedMessages<T> implements PushSource<T> {
  private subscription: AmqpSubscription | null = null;
  private buffer: Array<{ delivery: PushedDelivery; from: AmqpSubscription }> = [];
  private ended: UsherClientError | null = null;
  private wake: (() => void) | null = null;

  constructor(
    private readonly connected: () => Promise<UsherAmqpClient>,
    private readonly queue: string,
    private readonly prefetch: number,
    private readonly decode: (delivery: PushedDelivery, from: AmqpSubscription) => T,
  ) {}

  async next(max: number, signal: AbortSignal): Promise<T[]> {
    if (this.subscription === null || !this.subscription.isOpen) await this.subscribe();
    while (this.buffer.length === 0) {
      if (this.ended !== null) {
        const error = this.ended;
        this.ended = null;
        await this.dropSubscription();
        throw error;
      }
      if (signal.aborted) return [];
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
      this.wake = null;
    }
    return this.buffer.splice(0, max).map(({ delivery, from }) => this.decode(delivery, from));
  }

  async cancel(): Promise<void> {
    const subscription = this.subscription;
    if (subscription === null) return;
    await subscription.cancel();
    // Arrived but never handed to a handler: back to the queue now.
    for (const { delivery, from } of this.buffer.splice(0)) {
      from.settle({ name: 'basic.reject', deliveryTag: delivery.deliveryTag, requeue: true });
    }
  }

  async close(): Promise<void> {
    await this.dropSubscription();
  }

  private async subscribe(): Promise<void> {
    await this.dropSubscription();
    this.ended = null;
    const link = await this.connected();
    this.subscription = await AmqpSubscription.start(link, this.queue, this.prefetch,
      (delivery, from) => {
        this.buffer.push({ delivery, from });
        this.wake?.();
      },
      (error, from) => {
        // A closed channel's deliveries are back in the queue already.
        if (!from.isOpen) this.buffer = this.buffer.filter((held) => held.from !== from);
        this.ended ??= error;
        this.wake?.();
      });
  }

  private async dropSubscription(): Promise<void> {
    const subscription = this.subscription;
    this.subscription = null;
    // Deliveries of a closed channel cannot be settled: the broker has
    // given them back already.
    this.buffer = this.buffer.filter(({ from }) => from !== subscription);
    await subscription?.close();
  }
}

/** consume() over AMQP has no lease to set: RabbitMQ's consumer timeout holds. */
export function unsupportedLease(): UsherClientError {
  return new UsherClientError(CLIENT_ERROR_CODES.UNSUPPORTED, 0,
    'consume() over AMQP cannot express visibilityTimeoutMs (AMQP leases last 30 minutes); ' +
      'use the HTTP API (http://...)', { field: 'consume' });
}
