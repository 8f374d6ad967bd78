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
// TODO(#4): the rest of UsherClient's API over AMQP (receive, admin), so
// that connect('amqp://...') can return the same client as HTTP.

import { isUtf8 } from 'node:buffer';
import { connect as connectTcp, type Socket } from 'node:net';

import { encodeContent, encodeMethodFrame } from '../amqp/frame-encoder.js';
import { AmqpFrameDecoder, type Inbound } from '../amqp/frame-decoder.js';
import type { BasicProperties } from '../amqp/content.js';
import { PROTOCOL_HEADER } from '../amqp/constants.js';
import { tableFrom } from '../amqp/field-table.js';
import type { Method, MethodName } from '../amqp/methods.js';
import { CLIENT_ERROR_CODES, UsherClientError } from './errors.js';
import type { MessageBody, PublishOptions, ReceivedBody } from './types.js';
import { plainValue } from '../amqp/field-table.js';

const CHANNEL = 1;
const FRAME_MAX = 131_072;

interface Pending {
  resolve(): void;
  reject(error: UsherClientError): void;
  returned: boolean;
}

/** A message pushed to an AMQP consumer. */
export interface AmqpDelivery {
  body: ReceivedBody;
  headers: Record<string, string>;
  priority: number;
  redelivered: boolean;
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

interface Waiter {
  name: MethodName;
  resolve(method: Method): void;
  reject(error: UsherClientError): void;
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
        capabilities: { publisher_confirms: true, 'connection.blocked': true },
      }),
      mechanism: 'PLAIN',
      response: Buffer.from(`\u0000${user}\u0000${password}`),
      locale: 'en_US',
    });
    const tune = await client.expect('connection.tune');
    if (tune.name !== 'connection.tune') throw new Error('unreachable');
    client.frameMax = Math.min(tune.frameMax || FRAME_MAX, FRAME_MAX);
    client.decoder.frameMax = client.frameMax;
    client.send({
      name: 'connection.tune-ok',
      channelMax: 1,
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
    const { bytes, contentType } = bodyBytes(body);
    const properties: BasicProperties = {
      deliveryMode: 2,
      priority: options.priority ?? 0,
      headers: tableFrom({ ...options.headers }),
    };
    if (contentType !== undefined) properties.contentType = contentType;
    if (options.id !== undefined) properties.messageId = options.id;

    const tag = this.nextTag++;
    const settled = new Promise<void>((resolve, reject) => {
      this.pending.set(tag, { resolve, reject, returned: false });
    });
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

  private delivered(): void {
    const incoming = this.incoming;
    this.incoming = null;
    if (incoming === null) return;
    const consumer = this.consumers.get(incoming.consumerTag);
    if (consumer === undefined) return;

    consumer.running++;
    const message = deliveryOf(incoming);
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
      if (frame.type === 'method') this.onMethod(frame.method);
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
        const index = this.waiters.findIndex((w) => w.name === method.name);
        if (index >= 0) this.waiters.splice(index, 1)[0].resolve(method);
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
    const tags = multiple ? [...this.pending.keys()].filter((t) => t <= tag) : [tag];
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
    this.unblock();
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
    this.socket.write(
      encodeMethodFrame(method.name.startsWith('connection.') ? 0 : CHANNEL, method),
    );
  }

  private expect(name: MethodName): Promise<Method> {
    if (this.closedWith !== null) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => this.waiters.push({ name, resolve, reject }));
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

function deliveryOf(incoming: Incoming): AmqpDelivery {
  const { properties } = incoming;
  const bytes =
    incoming.parts.length === 1 ? incoming.parts[0] : Buffer.concat(incoming.parts);
  const headers: Record<string, string> = {};
  for (const [name, value] of properties.headers ?? []) {
    const plain = plainValue(value);
    if (typeof plain === 'string') headers[name] = plain;
  }
  let body: ReceivedBody = bytes;
  if (properties.contentType === 'application/json') {
    try {
      body = JSON.parse(bytes.toString('utf8'));
    } catch {
      body = bytes.toString('utf8');
    }
  } else if (isUtf8(bytes)) body = bytes.toString('utf8');
  return {
    body,
    headers,
    priority: properties.priority ?? 0,
    redelivered: incoming.redelivered,
  };
}

function outcomeUnknown(why: string): UsherClientError {
  return new UsherClientError(
    CLIENT_ERROR_CODES.OUTCOME_UNKNOWN,
    0,
    `${why} before the broker confirmed: the message may or may not be stored`,
  );
}

/** The body's bytes, by the same rules as the HTTP client's. */
function bodyBytes(body: MessageBody): { bytes: Buffer; contentType?: string } {
  if (Buffer.isBuffer(body)) return { bytes: body };
  if (body instanceof Uint8Array)
    return { bytes: Buffer.from(body.buffer, body.byteOffset, body.byteLength) };
  if (typeof body === 'string') return { bytes: Buffer.from(body) };
  return { bytes: Buffer.from(JSON.stringify(body)), contentType: 'application/json' };
}
