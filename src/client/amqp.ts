// The client's AMQP transport: one connection, one channel in confirm
// mode, publishes pipelined (no round trip each) and each promise settled
// exactly once: by the broker's confirm, by its refusal, or, when the
// connection ends first, with OUTCOME_UNKNOWN (CASES.md C15).
//
//   const usher = await connectAmqp('amqp://guest:guest@127.0.0.1:5672');
//   await usher.publish('emails', { to: 'ada@example.org' });
//   await usher.close();
//
// Consumers get messages pushed (basic.consume with a prefetch of their
// concurrency) and settle them with ack or nack as the HTTP consume() does.
//
// Channel 1 carries publishes (confirm mode) and these consumers. Channel 2
// carries everything that may fail on its own: declares, purges, deletes,
// basic.get and its acks (amqp-api.ts, behind connect('amqp://...')). A
// refusal there closes channel 2 only; it is opened again on next use.
// Channels 3 and up belong to callers of openChannel(): each consume() of
// connect('amqp://...') has one (amqp-subscription.ts), so its prefetch,
// delivery tags and cancel are its own.

import { connect as connectTcp, type Socket } from 'node:net';

import { encodeContent, encodeMethodFrame } from '../amqp/frame-encoder.js';
import { AmqpFrameDecoder, type Inbound } from '../amqp/frame-decoder.js';
import type { BasicProperties } from '../amqp/content.js';
import { PROTOCOL_HEADER } from '../amqp/constants.js';
import { tableFrom } from '../amqp/field-table.js';
import type { Method, MethodName } from '../amqp/methods.js';
import { CLIENT_ERROR_CODES, UsherClientError } from './errors.js';
import type { MessageBody, PublishOptions } from './types.js';
import {
  type AmqpDelivery, bodyBytes, decodeDelivery, outcomeUnknown, refusalOf,
} from './amqp-terms.js';
import { ID_HEADER } from '../amqp/mapping.js';

const CHANNEL = 1;
/** Requests that may be refused without ending the connection. */
const ADMIN = 2;
const FRAME_MAX = 131_072;
/** Most channels this client opens: publishes, admin, and consumers. */
const OWN_CHANNEL_MAX = 2047;

interface Pending {
  resolve(): void;
  reject(error: UsherClientError): void;
  returned: boolean;
}

export type AmqpHandler = (message: AmqpDelivery) => unknown;

interface Incoming {
  deliveryTag: number;
  consumerTag: string;
  redelivered: boolean;
  properties: BasicProperties;
  parts: Buffer[];
}

interface ConsumerState {
  handler: AmqpHandler;
  running: number;
  idle: (() => void) | null;
}

/** A reply on the admin channel, with its content if it has one. */
export interface AmqpReply {
  method: Method;
  properties: BasicProperties;
  body: Buffer;
}

interface Waiter {
  channel: number;
  names: readonly MethodName[];
  resolve(reply: AmqpReply): void;
  reject(error: UsherClientError): void;
}

/** Who holds a channel opened with openChannel(). */
export interface ChannelOwner {
  /** A frame on the channel that no call() awaits: deliveries, cancels. */
  onFrame(frame: Inbound): void;
  /** The broker closed the channel, or the connection ended. */
  onClosed(error: UsherClientError): void;
}

/** basic.get-ok waiting for its content on the admin channel. */
interface AdminContent {
  reply: AmqpReply;
  waiter: Waiter | undefined;
  parts: Buffer[];
}

/** Publishes to Usher over AMQP 0-9-1. Create it with connectAmqp(). */
export class UsherAmqpClient {
  private readonly decoder = new AmqpFrameDecoder({ from: 'server' });
  private readonly pending = new Map<number, Pending>();
  private readonly waiters: Waiter[] = [];
  private frameMax = FRAME_MAX;
  private nextTag = 1;
  private closedWith: UsherClientError | null = null;
  private readonly consumers = new Map<string, ConsumerState>();
  private incoming: Incoming | null = null;
  private nextConsumer = 1;
  /** Set while the broker says connection.blocked; resolved on unblocked. */
  private blocked: { until: Promise<void>; release(): void } | null = null;
  private adminOpening: Promise<void> | null = null;
  private adminContent: AdminContent | null = null;
  /** Grows each time the admin channel closes: its delivery tags go stale. */
  adminEpoch = 0;
  /** Channels opened with openChannel(), by number. */
  private readonly owned = new Map<number, ChannelOwner>();
  private channelMax = ADMIN;

  private constructor(
    private readonly socket: Socket,
    readonly url: string,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => this.onClosed());
  }

  /** Opens the connection and a confirm-mode channel. */
  static async open(url: string): Promise<UsherAmqpClient> {
    const target = new URL(url);
    if (target.protocol !== 'amqp:') {
      throw new UsherClientError('INVALID_ARGUMENT', 0, `not an amqp:// URL: ${url}`);
    }
    const socket = connectTcp(Number(target.port || 5672), target.hostname);
    const client = new UsherAmqpClient(socket, url);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', (err) =>
        reject(
          new UsherClientError(
            'CONNECTION_FAILED',
            0,
            `cannot reach Usher at ${url}: ${err.message}`,
            { cause: err },
          ),
        ),
      );
    });

    socket.write(PROTOCOL_HEADER);
    await client.expect('connection.start');
    const user = decodeURIComponent(target.username || 'guest');
    const password = decodeURIComponent(target.password || 'guest');
    client.send({
      name: 'connection.start-ok',
      clientProperties: tableFrom({
        product: 'usher-client',
        capabilities: {
          publisher_confirms: true, 'connection.blocked': true, consumer_cancel_notify: true,
        },
      }),
      mechanism: 'PLAIN',
      response: Buffer.from(`\u0000${user}\u0000${password}`),
      locale: 'en_US',
    });
    const tune = await client.expect('connection.tune');
    if (tune.name !== 'connection.tune') throw new Error('unreachable');
    client.frameMax = Math.min(tune.frameMax || FRAME_MAX, FRAME_MAX);
    client.decoder.frameMax = client.frameMax;
    // The broker's limit, else ours: channels past the admin one are few
    // (one per consume()), but a client may run many consumers.
    client.channelMax = Math.min(tune.channelMax || OWN_CHANNEL_MAX, OWN_CHANNEL_MAX);
    client.send({
      name: 'connection.tune-ok',
      channelMax: client.channelMax,
      frameMax: client.frameMax,
      heartbeat: 0,
    });
    client.send({
      name: 'connection.open',
      virtualHost: decodeURIComponent(target.pathname.slice(1)) || '/',
    });
    await client.expect('connection.open-ok');
    client.send({ name: 'channel.open' });
    await client.expect('channel.open-ok');
    client.send({ name: 'confirm.select', noWait: false });
    await client.expect('confirm.select-ok');
    return client;
  }

  /**
   * Publishes one message to `queue` (through the default exchange). The
   * promise resolves once the broker has it on disk, rejects with
   * QUEUE_NOT_FOUND when there is no such queue, PUBLISH_REFUSED when the
   * broker refuses it, and OUTCOME_UNKNOWN when the connection ends first.
   */
  publish(queue: string, body: MessageBody, options: PublishOptions = {}): Promise<void> {
    if (this.closedWith !== null) return Promise.reject(this.closedWith);
    // The broker is at critical (issue #6): wait for unblocked rather than
    // be refused; a close meanwhile rejects as any other publish.
    if (this.blocked !== null) {
      return this.blocked.until.then(() => this.publish(queue, body, options));
    }
    const { bytes, contentType: bodyType } = bodyBytes(body);
    const headers: Record<string, string> = { ...options.headers };
    // A content-type header declares the body's type, as over HTTP: it is
    // the AMQP property, which the broker keeps apart from the headers.
    let contentType = bodyType;
    for (const name of Object.keys(headers)) {
      if (name.toLowerCase() !== 'content-type') continue;
      contentType = headers[name];
      delete headers[name];
    }
    // Usher's own id, so its deduplication works over AMQP too.
    if (options.id !== undefined) headers[ID_HEADER] = options.id;
    const properties: BasicProperties = {
      deliveryMode: 2,
      priority: options.priority ?? 0,
      headers: tableFrom(headers),
    };
    if (contentType !== undefined) properties.contentType = contentType;
    if (options.id !== undefined) properties.messageId = options.id;
    if (options.ttlMs !== undefined) properties.expiration = String(options.ttlMs);

    const tag = this.nextTag++;
    const settled = new Promise<void>((resolve, reject) => {
      this.pending.set(tag, { resolve, reject, returned: false });
    });
    // Publishes made in one turn leave in one write (writev), not one each.
    this.socket.cork();
    process.nextTick(() => this.socket.uncork());
    this.socket.write(
      encodeContent(
        CHANNEL,
        {
          name: 'basic.publish',
          exchange: '',
          routingKey: queue,
          mandatory: true,
          immediate: false,
        },
        properties,
        bytes,
        this.frameMax,
      ),
    );
    return settled;
  }

  /**
   * Runs `handler` for every message of `queue`, up to `concurrency` at
   * once: acks when it returns, nacks (requeued) when it throws. Resolves
   * with a stop function that cancels and waits for running handlers.
   *
   * @example
   *   const stop = await usher.consume('emails', async (m) => send(m.body), { concurrency: 8 });
   *   await stop();
   */
  async consume(
    queue: string,
    handler: AmqpHandler,
    options: { concurrency?: number } = {},
  ): Promise<() => Promise<void>> {
    const concurrency = options.concurrency ?? 1;
    const tag = `usher-${this.nextConsumer++}`;
    const state: ConsumerState = { handler, running: 0, idle: null };
    this.consumers.set(tag, state);

    this.send({
      name: 'basic.qos',
      prefetchSize: 0,
      prefetchCount: concurrency,
      global: false,
    });
    await this.expect('basic.qos-ok');
    this.send({
      name: 'basic.consume',
      queue,
      consumerTag: tag,
      noLocal: false,
      noAck: false,
      exclusive: false,
      noWait: false,
      arguments: new Map(),
    });
    await this.expect('basic.consume-ok');

    return async () => {
      if (this.closedWith === null) {
        this.send({ name: 'basic.cancel', consumerTag: tag, noWait: false });
        await this.expect('basic.cancel-ok').catch(() => {});
      }
      this.consumers.delete(tag);
      if (state.running > 0) await new Promise<void>((resolve) => (state.idle = resolve));
    };
  }

  // --- the admin channel (amqp-api.ts) ----------------------------------

  /**
   * Sends `method` on the admin channel and resolves with the first reply
   * named in `replies`. A refusal rejects with the broker's reply (see
   * refusalOf) and closes the admin channel only.
   */
  async call(method: Method, replies: readonly MethodName[]): Promise<AmqpReply> {
    await this.openAdmin();
    const reply = this.expectOn(ADMIN, replies);
    this.sendOn(ADMIN, method);
    return reply;
  }

  /** Sends `method` on the admin channel with no reply (ack, nack). */
  async cast(method: Method): Promise<void> {
    await this.openAdmin();
    this.sendOn(ADMIN, method);
  }

  private openAdmin(): Promise<void> {
    if (this.closedWith !== null) return Promise.reject(this.closedWith);
    this.adminOpening ??= (async () => {
      const opened = this.expectOn(ADMIN, ['channel.open-ok']);
      this.sendOn(ADMIN, { name: 'channel.open' });
      await opened;
    })().catch((err: unknown) => {
      this.adminOpening = null;
      throw err;
    });
    return this.adminOpening;
  }

  /** The broker closed the admin channel: its waiters fail, it reopens later. */
  private adminClosed(replyCode: number, replyText: string): void {
    this.sendOn(ADMIN, { name: 'channel.close-ok' });
    this.adminOpening = null;
    this.adminContent = null;
    this.adminEpoch++;
    const error = refusalOf(replyCode, replyText);
    for (const waiter of this.waiters.filter((w) => w.channel === ADMIN)) {
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.reject(error);
    }
  }

  private onAdminFrame(frame: Inbound): void {
    if (frame.type === 'method') {
      const { method } = frame;
      if (method.name === 'channel.close') {
        this.adminClosed(method.replyCode, method.replyText);
        return;
      }
      const waiter = this.takeWaiter(ADMIN, method.name);
      if (method.name === 'basic.get-ok') {
        this.adminContent = {
          reply: { method, properties: {}, body: Buffer.alloc(0) },
          waiter,
          parts: [],
        };
        return;
      }
      waiter?.resolve({ method, properties: {}, body: Buffer.alloc(0) });
      return;
    }
    const content = this.adminContent;
    if (content === null) return;
    if (frame.type === 'header') {
      content.reply.properties = frame.header.properties;
      if (frame.header.bodySize > 0) return;
    } else if (frame.type === 'body') {
      content.parts.push(Buffer.from(frame.body));
      if (!frame.last) return;
    } else return;
    this.adminContent = null;
    content.reply.body = Buffer.concat(content.parts);
    content.waiter?.resolve(content.reply);
  }

  // --- channels of their own (amqp-subscription.ts) -------------------

  /** Opens a channel for `owner`; frames no callOn() awaits go to it. */
  async openChannel(owner: ChannelOwner): Promise<number> {
    if (this.closedWith !== null) throw this.closedWith;
    let channel = ADMIN + 1;
    while (this.owned.has(channel)) channel++;
    if (channel > this.channelMax) {
      throw new UsherClientError(CLIENT_ERROR_CODES.INVALID_ARGUMENT, 0,
        `no channel left on this connection (channel-max ${this.channelMax})`);
    }
    this.owned.set(channel, owner);
    try {
      await this.callOn(channel, { name: 'channel.open' }, ['channel.open-ok']);
    } catch (err) {
      this.owned.delete(channel);
      throw err;
    }
    return channel;
  }

  /** Sends `method` on an owned channel and resolves with its reply. */
  callOn(channel: number, method: Method, replies: readonly MethodName[]): Promise<AmqpReply> {
    const reply = this.expectOn(channel, replies);
    this.sendOn(channel, method);
    return reply;
  }

  /** Sends `method` on an owned channel with no reply (ack, nack). */
  castOn(channel: number, method: Method): void {
    if (this.owned.has(channel)) this.sendOn(channel, method);
  }

  /** Closes an owned channel; the broker gives back what it left unacked. */
  async closeChannel(channel: number): Promise<void> {
    if (!this.owned.has(channel)) return;
    await this.callOn(channel, {
      name: 'channel.close', replyCode: 200, replyText: 'bye', classId: 0, methodId: 0,
    }, ['channel.close-ok']).catch(() => {});
    this.owned.delete(channel);
  }

  private onOwnedFrame(channel: number, owner: ChannelOwner, frame: Inbound): void {
    if (frame.type === 'channel-error') {
      // The broker sent what does not decode: framing cannot be trusted.
      this.socket.destroy();
      return;
    }
    if (frame.type !== 'method') {
      owner.onFrame(frame);
      return;
    }
    const { method } = frame;
    if (method.name === 'channel.close') {
      this.sendOn(channel, { name: 'channel.close-ok' });
      this.owned.delete(channel);
      const error = refusalOf(method.replyCode, method.replyText);
      for (const waiter of this.waiters.filter((w) => w.channel === channel)) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.reject(error);
      }
      owner.onClosed(error);
      return;
    }
    const waiter = this.takeWaiter(channel, method.name);
    if (waiter !== undefined) waiter.resolve({ method, properties: {}, body: Buffer.alloc(0) });
    else owner.onFrame(frame);
  }

  private takeWaiter(channel: number, name: MethodName): Waiter | undefined {
    const index = this.waiters.findIndex((w) => w.channel === channel && w.names.includes(name));
    return index >= 0 ? this.waiters.splice(index, 1)[0] : undefined;
  }

  private delivered(): void {
    const incoming = this.incoming;
    this.incoming = null;
    if (incoming === null) return;
    const consumer = this.consumers.get(incoming.consumerTag);
    if (consumer === undefined) return;

    consumer.running++;
    const message = decodeDelivery(
      incoming.properties,
      incoming.parts.length === 1 ? incoming.parts[0] : Buffer.concat(incoming.parts),
      incoming.redelivered,
    );
    void (async () => {
      let ok = true;
      try {
        await consumer.handler(message);
      } catch {
        ok = false;
      }
      if (this.closedWith === null) {
        this.send(
          ok
            ? { name: 'basic.ack', deliveryTag: incoming.deliveryTag, multiple: false }
            : {
                name: 'basic.nack',
                deliveryTag: incoming.deliveryTag,
                multiple: false,
                requeue: true,
              },
        );
      }
      consumer.running--;
      if (consumer.running === 0) consumer.idle?.();
    })();
  }

  /** Drops the connection at once; unsettled publishes are OUTCOME_UNKNOWN. */
  destroy(): void {
    this.socket.destroy();
  }

  /** Waits for every publish to settle, then closes the connection. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.pending.keys()].map((tag) => this.settledOf(tag)));
    if (this.closedWith !== null) return;
    this.send({
      name: 'connection.close',
      replyCode: 200,
      replyText: 'bye',
      classId: 0,
      methodId: 0,
    });
    await this.expect('connection.close-ok').catch(() => {});
    this.socket.end();
  }

  private settledOf(tag: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = this.pending.get(tag);
      if (entry === undefined) return resolve();
      const { resolve: done, reject } = entry;
      entry.resolve = () => {
        done();
        resolve();
      };
      entry.reject = (error) => {
        reject(error);
        resolve();
      };
    });
  }

  // --- reading --------------------------------------------------------

  private onData(chunk: Buffer): void {
    let frames: Inbound[];
    try {
      frames = this.decoder.push(chunk);
    } catch {
      this.socket.destroy();
      return;
    }
    for (const frame of frames) {
      const channel = 'channel' in frame ? frame.channel : 0;
      const owner = this.owned.get(channel);
      if (owner !== undefined) this.onOwnedFrame(channel, owner, frame);
      else if ('channel' in frame && frame.channel === ADMIN) this.onAdminFrame(frame);
      else if (frame.type === 'method') this.onMethod(frame.method);
      else if (frame.type === 'header' && this.incoming !== null) {
        this.incoming.properties = frame.header.properties;
        if (frame.header.bodySize === 0) this.delivered();
      } else if (frame.type === 'body' && this.incoming !== null) {
        this.incoming.parts.push(Buffer.from(frame.body));
        if (frame.last) this.delivered();
      } else if (frame.type === 'connection-error' || frame.type === 'channel-error') {
        this.socket.destroy();
      }
    }
  }

  private onMethod(method: Method): void {
    switch (method.name) {
      case 'connection.blocked': {
        if (this.blocked !== null) return;
        let release = () => {};
        const until = new Promise<void>((resolve) => (release = resolve));
        this.blocked = { until, release };
        return;
      }
      case 'connection.unblocked':
        this.unblock();
        return;
      case 'basic.ack':
        return this.settle(method.deliveryTag, method.multiple, null);
      case 'basic.nack':
        return this.settle(
          method.deliveryTag,
          method.multiple,
          new UsherClientError(
            CLIENT_ERROR_CODES.PUBLISH_REFUSED,
            0,
            'the broker refused the message',
          ),
        );
      case 'basic.deliver':
        this.incoming = {
          deliveryTag: method.deliveryTag,
          consumerTag: method.consumerTag,
          redelivered: method.redelivered,
          properties: {},
          parts: [],
        };
        return;
      case 'basic.cancel':
        this.consumers.delete(method.consumerTag);
        return;
      case 'basic.return':
        // The ack that follows settles it; mark it refused first.
        this.markReturned();
        return;
      case 'connection.close':
      case 'channel.close':
        this.closedWith = outcomeUnknown(
          `the broker closed the connection: ${method.replyText}`,
        );
        this.socket.destroy();
        return;
      default: {
        const channel = method.name.startsWith('connection.') ? 0 : CHANNEL;
        this.takeWaiter(channel, method.name)?.resolve({
          method,
          properties: {},
          body: Buffer.alloc(0),
        });
      }
    }
  }

  /** basic.return comes before the ack of the same publish, in order. */
  private markReturned(): void {
    for (const [, entry] of this.pending) {
      if (!entry.returned) {
        entry.returned = true;
        return;
      }
    }
  }

  private settle(tag: number, multiple: boolean, error: UsherClientError | null): void {
    // Tags go in ascending: a multiple ack takes them from the front.
    const tags: number[] = [];
    if (!multiple) tags.push(tag);
    else {
      for (const t of this.pending.keys()) {
        if (t > tag) break;
        tags.push(t);
      }
    }
    for (const t of tags) {
      const entry = this.pending.get(t);
      if (entry === undefined) continue;
      this.pending.delete(t);
      if (error !== null) entry.reject(error);
      else if (entry.returned) {
        entry.reject(
          new UsherClientError('QUEUE_NOT_FOUND', 404, 'no queue took the message'),
        );
      } else entry.resolve();
    }
  }

  private onClosed(): void {
    this.closedWith ??= outcomeUnknown('the connection closed');
    for (const entry of this.pending.values()) entry.reject(this.closedWith);
    this.pending.clear();
    for (const waiter of this.waiters.splice(0)) waiter.reject(this.closedWith);
    const owners = [...this.owned.values()];
    this.owned.clear();
    for (const owner of owners) owner.onClosed(this.closedWith);
    this.unblock();
  }

  /** True once the connection has ended; nothing more can be sent on it. */
  get isClosed(): boolean {
    return this.closedWith !== null || this.socket.destroyed;
  }

  private unblock(): void {
    const blocked = this.blocked;
    this.blocked = null;
    blocked?.release();
  }

  /** True while the broker has this connection blocked. */
  get isBlocked(): boolean {
    return this.blocked !== null;
  }

  // --- writing --------------------------------------------------------

  private send(method: Method): void {
    this.sendOn(method.name.startsWith('connection.') ? 0 : CHANNEL, method);
  }

  private sendOn(channel: number, method: Method): void {
    if (!this.socket.destroyed) this.socket.write(encodeMethodFrame(channel, method));
  }

  private async expect(name: MethodName): Promise<Method> {
    const channel = name.startsWith('connection.') ? 0 : CHANNEL;
    return (await this.expectOn(channel, [name])).method;
  }

  private expectOn(channel: number, names: readonly MethodName[]): Promise<AmqpReply> {
    if (this.closedWith !== null) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) =>
      this.waiters.push({ channel, names, resolve, reject }));
  }
}

/**
 * Connects to Usher's AMQP listener.
 *
 * @example
 *   const usher = await connectAmqp('amqp://guest:guest@127.0.0.1:5672');
 *   await Promise.all(events.map((e) => usher.publish('tickets', e)));
 */
export function connectAmqp(
  url = 'amqp://guest:guest@127.0.0.1:5672',
): Promise<UsherAmqpClient> {
  return UsherAmqpClient.open(url);
}
