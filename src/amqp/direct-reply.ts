// Direct reply-to, as RabbitMQ has it: an RPC client consumes from the
// pseudo-queue `amq.rabbitmq.reply-to` (no-ack only) and publishes its
// requests with that name as `reply-to`; the server receiving a request
// sees a name of the client channel's own instead,
// `amq.rabbitmq.reply-to.<key>`, and a reply published to the default
// exchange with that name as routing key goes straight to the client's
// channel. No queue is made and nothing is stored: a reply whose client
// has gone is unroutable (returned when mandatory), as in RabbitMQ. As
// there, every key of a publish to the default exchange that is a reply
// name gets it, CC and BCC keys too, whatever queues the others reach.
//
// The key is 18 random bytes, so a name cannot be guessed. Replying takes
// the right to publish to the name (channel-publishing.ts, allowReplies),
// where RabbitMQ asks for write on the default exchange.

import { randomBytes } from 'node:crypto';

import type { BasicProperties } from './content.js';
import { preconditionFailed } from './errors.js';

/** The pseudo-queue a client consumes its replies from. */
export const REPLY_QUEUE = 'amq.rabbitmq.reply-to';
const REPLY_PREFIX = `${REPLY_QUEUE}.`;

/**
 * A channel's reply consumer: hands a reply to the client, delivered with
 * the publish's `routingKey`; false when it cannot.
 */
export type ReplyTaker = (routingKey: string, properties: BasicProperties, body: Buffer) => boolean;

/** Whether a routing key may name a reply consumer (the prefix alone names none). */
export function isReplyName(key: string): boolean {
  return key.length > REPLY_PREFIX.length && key.startsWith(REPLY_PREFIX);
}

/** The reply names in use on one listener, each with the channel it reaches. */
export class DirectReplies {
  readonly #takers = new Map<string, ReplyTaker>();

  /** A new reply name for `taker`, good until forgotten. */
  open(taker: ReplyTaker): string {
    const name = REPLY_PREFIX + randomBytes(18).toString('base64url');
    this.#takers.set(name, taker);
    return name;
  }

  forget(name: string): void {
    this.#takers.delete(name);
  }

  /**
   * Hands a reply published to the default exchange, with `name` among
   * its keys, to that name's channel, delivered with the publish's
   * `routingKey`; false when `name` names no reply consumer (any more),
   * or the channel could not take it.
   */
  deliver(name: string, routingKey: string, properties: BasicProperties, body: Buffer): boolean {
    const taker = this.#takers.get(name);
    return taker !== undefined && taker(routingKey, properties, body);
  }

  /** Whether `name` is a reply name in use: its client is still there. */
  has(name: string): boolean {
    return this.#takers.has(name);
  }
}

/**
 * A channel's reply consumer, while it has one: its tag and the name it
 * gave out. The channel sends the replies; this keeps the books. One a
 * channel, refused with RabbitMQ's texts.
 */
export class ReplyConsumer {
  #tag: string | null = null;
  #name: string | null = null;

  constructor(private readonly registry: DirectReplies) {}

  /** Whether `tag` is the reply consumer's. */
  owns(tag: string): boolean {
    return this.#tag === tag;
  }

  /** Throws unless a consumer that acks `noAck` may start now. */
  check(noAck: boolean): void {
    if (!noAck) throw preconditionFailed('reply consumer cannot acknowledge');
    if (this.#name !== null) throw preconditionFailed('reply consumer already set');
  }

  /** Starts consumer `tag`: replies to the name it gets go to `take`. */
  start(tag: string, take: ReplyTaker): void {
    this.#name = this.registry.open(take);
    this.#tag = tag;
  }

  /** The reply-to a publish asking for amq.rabbitmq.reply-to is sent with. */
  name(): string {
    if (this.#name === null) throw preconditionFailed('fast reply consumer does not exist');
    return this.#name;
  }

  /** Cancelled, or its channel closed: replies to its name are unroutable. */
  stop(): void {
    if (this.#name !== null) this.registry.forget(this.#name);
    this.#name = null;
    this.#tag = null;
  }
}
