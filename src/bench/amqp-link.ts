// A minimal AMQP 0-9-1 client connection for the bench: handshake, one
// channel, and raw access to inbound frames. It is built on Usher's own
// codec (src/amqp) and writes in batches: callers append encoded frames
// and one socket write per tick carries them all. Works against Usher and
// RabbitMQ alike; it speaks only what the bench needs.

import { connect as connectTcp, type Socket } from 'node:net';

import { PROTOCOL_HEADER } from '../amqp/constants.js';
import { tableFrom } from '../amqp/field-table.js';
import { encodeMethodFrame } from '../amqp/frame-encoder.js';
import { AmqpFrameDecoder, type Inbound } from '../amqp/frame-decoder.js';
import type { Method, MethodName } from '../amqp/methods.js';

export const CHANNEL = 1;
const FRAME_MAX = 131_072;
const CONNECT_TIMEOUT_MS = 10_000;

interface Waiter {
  name: MethodName;
  resolve(method: Method): void;
  reject(error: Error): void;
}

export class AmqpLinkError extends Error {
  override name = 'AmqpLinkError';
}

export class AmqpLink {
  readonly #socket: Socket;
  readonly #decoder = new AmqpFrameDecoder({ from: 'server' });
  readonly #waiters: Waiter[] = [];
  #out: Buffer[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  #closedWith: Error | null = null;
  /** close() was called: the end that follows is no failure. */
  #closing = false;
  frameMax = FRAME_MAX;
  /** Frames nobody waits for: deliveries, confirms. Set by the driver. */
  onFrame: (frame: Inbound) => void = () => {};
  /** Called once when the connection ends, with why. */
  onClose: (error: Error) => void = () => {};

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#fail(new AmqpLinkError(`AMQP socket: ${err.message}`)));
    socket.on('close', () => this.#fail(new AmqpLinkError('AMQP connection closed')));
  }

  /** Connects, logs in with the URL's user (guest), opens channel 1. */
  static async open(url: string): Promise<AmqpLink> {
    const target = new URL(url);
    if (target.protocol !== 'amqp:') throw new AmqpLinkError(`not an amqp:// URL: ${url}`);
    const socket = connectTcp(Number(target.port || 5672), target.hostname);
    const link = new AmqpLink(socket);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new AmqpLinkError(`no AMQP connection to ${target.host} within 10 s`));
      }, CONNECT_TIMEOUT_MS);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new AmqpLinkError(`cannot reach ${target.host}: ${err.message}`));
      });
    });

    socket.write(PROTOCOL_HEADER);
    await link.expect('connection.start');
    const user = decodeURIComponent(target.username || 'guest');
    const password = decodeURIComponent(target.password || 'guest');
    link.send({
      name: 'connection.start-ok',
      clientProperties: tableFrom({
        product: 'usher-bench',
        capabilities: { publisher_confirms: true, consumer_cancel_notify: true },
      }),
      mechanism: 'PLAIN',
      response: Buffer.from(`\u0000${user}\u0000${password}`),
      locale: 'en_US',
    });
    const tune = await link.expect('connection.tune');
    if (tune.name !== 'connection.tune') throw new AmqpLinkError('expected connection.tune');
    link.frameMax = Math.min(tune.frameMax || FRAME_MAX, FRAME_MAX);
    link.#decoder.frameMax = link.frameMax;
    link.send({ name: 'connection.tune-ok', channelMax: 1, frameMax: link.frameMax, heartbeat: 0 });
    link.send({
      name: 'connection.open',
      virtualHost: decodeURIComponent(target.pathname.slice(1)) || '/',
    });
    await link.expect('connection.open-ok');
    link.send({ name: 'channel.open' });
    await link.expect('channel.open-ok');
    return link;
  }

  get closed(): boolean {
    return this.#closedWith !== null;
  }

  /** Sends a method and waits for its answer. */
  async call(method: Method, answer: MethodName): Promise<Method> {
    this.send(method);
    return this.expect(answer);
  }

  send(method: Method): void {
    const channel = method.name.startsWith('connection.') ? 0 : CHANNEL;
    this.write(encodeMethodFrame(channel, method));
  }

  /** Queues encoded frames; they go out together at the end of the tick. */
  write(frames: Buffer): void {
    if (this.#closedWith !== null) return;
    this.#out.push(frames);
    this.#outBytes += frames.length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  /** Bytes the socket holds unsent: the driver backs off above a limit. */
  get backlogBytes(): number {
    return this.#socket.writableLength + this.#outBytes;
  }

  expect(name: MethodName): Promise<Method> {
    if (this.#closedWith !== null) return Promise.reject(this.#closedWith);
    return new Promise((resolve, reject) => this.#waiters.push({ name, resolve, reject }));
  }

  async close(): Promise<void> {
    if (this.#closedWith !== null) return;
    this.#closing = true;
    const closing = this.call(
      {
        name: 'connection.close',
        replyCode: 200,
        replyText: 'bench done',
        classId: 0,
        methodId: 0,
      },
      'connection.close-ok',
    ).catch(() => undefined);
    const timeout = new Promise((resolve) => setTimeout(resolve, 5000).unref());
    await Promise.race([closing, timeout]);
    this.#socket.destroy();
  }

  /** Writes at once, after anything queued: for callers that batch. */
  writeNow(data: Buffer): void {
    if (this.#closedWith !== null) return;
    this.#flush();
    this.#socket.write(data);
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#out.length === 0 || this.#closedWith !== null) return;
    const data = this.#out.length === 1 ? this.#out[0] : Buffer.concat(this.#out, this.#outBytes);
    this.#out = [];
    this.#outBytes = 0;
    this.#socket.write(data);
  }

  #onData(chunk: Buffer): void {
    let frames: Inbound[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (err) {
      this.#fail(new AmqpLinkError(`undecodable frame from the broker: ${(err as Error).message}`));
      this.#socket.destroy();
      return;
    }
    for (const frame of frames) {
      if (frame.type === 'method') {
        const { method } = frame;
        if (method.name === 'connection.close' || method.name === 'channel.close') {
          this.#fail(
            new AmqpLinkError(
              `broker closed the ${method.name.split('.')[0]}: ` +
                `${method.replyCode} ${method.replyText}`,
            ),
          );
          this.#socket.destroy();
          return;
        }
        const index = this.#waiters.findIndex((w) => w.name === method.name);
        if (index >= 0) {
          this.#waiters.splice(index, 1)[0].resolve(method);
          continue;
        }
      } else if (frame.type === 'connection-error' || frame.type === 'channel-error') {
        this.#fail(new AmqpLinkError(`AMQP ${frame.type}: ${frame.error.message}`));
        this.#socket.destroy();
        return;
      }
      this.onFrame(frame);
    }
  }

  #fail(error: Error): void {
    if (this.#closedWith !== null) return;
    this.#closedWith = error;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
    if (!this.#closing) this.onClose(error);
  }
}
