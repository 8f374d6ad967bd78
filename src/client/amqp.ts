// The client's AMQP transport: one connection, one channel in confirm
// mode, publishes pipelined (no round trip each) and each promise settled
// exactly once: by the broker's confirm, by its refusal, or, when the
// connection ends first, with OUTCOME_UNKNOWN (CASES.md C15).
//
//   const usher = await connectAmqp('amqp://guest:guest@127.0.0.1:5672');
//   await usher.publish('emails', { to: 'ada@example.org' });
//   await usher.close();
//
// TODO(#4): consume, and the rest of UsherClient's API over AMQP, so that
// connect('amqp://...') can return the same client as HTTP.

import { connect as connectTcp, type Socket } from 'node:net';

import { encodeContent, encodeMethodFrame } from '../amqp/frame-encoder.js';
import { AmqpFrameDecoder, type Inbound } from '../amqp/frame-decoder.js';
import type { BasicProperties } from '../amqp/content.js';
import { PROTOCOL_HEADER } from '../amqp/constants.js';
import { tableFrom } from '../amqp/field-table.js';
import type { Method, MethodName } from '../amqp/methods.js';
import { CLIENT_ERROR_CODES, UsherClientError } from './errors.js';
import type { MessageBody, PublishOptions } from './types.js';

const CHANNEL = 1;
const FRAME_MAX = 131_072;

interface Pending {
  resolve(): void;
  reject(error: UsherClientError): void;
  returned: boolean;
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
      socket.once('error', (err) => reject(new UsherClientError('CONNECTION_FAILED', 0,
        `cannot reach Usher at ${url}: ${err.message}`, { cause: err })));
    });

    socket.write(PROTOCOL_HEADER);
    await client.expect('connection.start');
    const user = decodeURIComponent(target.username || 'guest');
    const password = decodeURIComponent(target.password || 'guest');
    client.send({
      name: 'connection.start-ok',
      clientProperties: tableFrom({ product: 'usher-client', capabilities: { publisher_confirms: true } }),
      mechanism: 'PLAIN',
      response: Buffer.from(`\u0000${user}\u0000${password}`),
      locale: 'en_US',
    });
    const tune = await client.expect('connection.tune');
    if (tune.name !== 'connection.tune') throw new Error('unreachable');
    client.frameMax = Math.min(tune.frameMax || FRAME_MAX, FRAME_MAX);
    client.decoder.frameMax = client.frameMax;
    client.send({ name: 'connection.tune-ok', channelMax: 1, frameMax: client.frameMax, heartbeat: 0 });
    client.send({ name: 'connection.open', virtualHost: decodeURIComponent(target.pathname.slice(1)) || '/' });
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
    this.socket.write(encodeContent(CHANNEL, {
      name: 'basic.publish', exchange: '', routingKey: queue, mandatory: true, immediate: false,
    }, properties, bytes, this.frameMax));
    return settled;
  }

  /** Waits for every publish to settle, then closes the connection. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.pending.keys()].map((tag) => this.settledOf(tag)));
    if (this.closedWith !== null) return;
    this.send({ name: 'connection.close', replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 });
    await this.expect('connection.close-ok').catch(() => {});
    this.socket.end();
  }

  private settledOf(tag: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = this.pending.get(tag);
      if (entry === undefined) return resolve();
      const { resolve: done, reject } = entry;
      entry.resolve = () => { done(); resolve(); };
      entry.reject = (error) => { reject(error); resolve(); };
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
      else if (frame.type === 'connection-error' || frame.type === 'channel-error') {
        this.socket.destroy();
      }
    }
  }

  private onMethod(method: Method): void {
    switch (method.name) {
      case 'basic.ack':
        return this.settle(method.deliveryTag, method.multiple, null);
      case 'basic.nack':
        return this.settle(method.deliveryTag, method.multiple,
          new UsherClientError(CLIENT_ERROR_CODES.PUBLISH_REFUSED, 0, 'the broker refused the message'));
      case 'basic.return':
        // The ack that follows settles it; mark it refused first.
        this.markReturned();
        return;
      case 'connection.close':
      case 'channel.close':
        this.closedWith = outcomeUnknown(`the broker closed the connection: ${method.replyText}`);
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
        entry.reject(new UsherClientError('QUEUE_NOT_FOUND', 404, 'no queue took the message'));
      } else entry.resolve();
    }
  }

  private onClosed(): void {
    this.closedWith ??= outcomeUnknown('the connection closed');
    for (const entry of this.pending.values()) entry.reject(this.closedWith);
    this.pending.clear();
    for (const waiter of this.waiters.splice(0)) waiter.reject(this.closedWith);
  }

  // --- writing --------------------------------------------------------

  private send(method: Method): void {
    this.socket.write(encodeMethodFrame(method.name.startsWith('connection.') ? 0 : CHANNEL, method));
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
export function connectAmqp(url = 'amqp://guest:guest@127.0.0.1:5672'): Promise<UsherAmqpClient> {
  return UsherAmqpClient.open(url);
}

function outcomeUnknown(why: string): UsherClientError {
  return new UsherClientError(CLIENT_ERROR_CODES.OUTCOME_UNKNOWN, 0,
    `${why} before the broker confirmed: the message may or may not be stored`);
}

/** The body's bytes, by the same rules as the HTTP client's. */
function bodyBytes(body: MessageBody): { bytes: Buffer; contentType?: string } {
  if (Buffer.isBuffer(body)) return { bytes: body };
  if (body instanceof Uint8Array) return { bytes: Buffer.from(body.buffer, body.byteOffset, body.byteLength) };
  if (typeof body === 'string') return { bytes: Buffer.from(body) };
  return { bytes: Buffer.from(JSON.stringify(body)), contentType: 'application/json' };
}
