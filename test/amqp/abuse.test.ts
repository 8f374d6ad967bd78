// Hostile and careless clients against Usher's AMQP listener, over real
// TCP on 127.0.0.1: hand-written frames through node:net, and amqplib.
// Every refusal is checked by the reply code of the close it causes, and
// every group ends by checking that the broker still serves a bystander
// connection and that messages confirmed before the group are intact.
//
// Expected values are RabbitMQ's. These tests FAIL until Usher is fixed:
//   - one ack on a channel with a channel-wide prefetch and 4,000 busy
//     consumers stalls the whole broker for most of a second: the ack wakes
//     every consumer, and every wake walks every subscriber (O(n^2));
//     a socket 'drain' does the same for every channel of the connection
//   - a consumer on a slow link is dropped for "missed heartbeats" although
//     it sends them: while the broker waits for its socket to drain it stops
//     reading, so the heartbeats go unread
// The rest pass today and guard fixes made while this file was written
// (handshake timeout; 530 on frame-max and channel-max; 406 on a repeated
// multiple ack and on inequivalent redeclares; exclusive queues and
// consumers; amq.* names; immediate; publishes before close; pipelined
// confirm.select; small frame-max consumers; a consumer or publisher that
// does not read).

import assert from 'node:assert/strict';
import { createServer, connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import amqp, { type ChannelModel } from 'amqplib';

import type { Broker } from '../../src/broker/broker.js';
import { PROTOCOL_HEADER } from '../../src/amqp/constants.js';
import { AmqpFrameDecoder, type Inbound } from '../../src/amqp/frame-decoder.js';
import { encodeContent, encodeMethodFrame } from '../../src/amqp/frame-encoder.js';
import type { BasicProperties } from '../../src/amqp/content.js';
import type { Method } from '../../src/amqp/methods.js';
import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import { openBroker, silentLogger, tempDir, until } from '../helpers.js';

const MAX_MESSAGE = 1024 * 1024;
const FRAME_MAX = 131_072;

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let server: AmqpServer;
let port: number;
let url: string;
const models: ChannelModel[] = [];
const raws: Raw[] = [];

// --- a raw client ------------------------------------------------------------

type Close = { scope: 'connection' | 'channel'; channel: number; code: number; text: string };

/** A socket that speaks AMQP by hand and keeps what the broker sends. */
class Raw {
  readonly socket: Socket;
  readonly received: Buffer[] = [];
  private readonly frames: Inbound[] = [];
  private readonly decoder = new AmqpFrameDecoder({ from: 'server', frameMax: FRAME_MAX });
  private readonly waiters = new Set<() => void>();
  ended = false;
  readonly connected: Promise<void>;

  constructor(to = port) {
    this.socket = tcpConnect(to, '127.0.0.1');
    this.connected = new Promise((resolve) => this.socket.once('connect', () => resolve()));
    this.socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      // The 8-byte protocol header the broker answers a bad header with
      // is no frame: keep the bytes, skip decoding.
      if (chunk.subarray(0, 4).toString('latin1') !== 'AMQP') {
        for (const frame of this.decoder.push(chunk)) this.frames.push(frame);
      }
      this.kick();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.ended = true;
      this.kick();
    });
    raws.push(this);
  }

  private kick(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  send(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  method(channel: number, method: Method): void {
    this.send(encodeMethodFrame(channel, method));
  }

  publish(channel: number, routingKey: string, body: Buffer,
    options: { exchange?: string; mandatory?: boolean; immediate?: boolean; properties?: BasicProperties } = {}): void {
    this.send(publishBytes(channel, routingKey, body, options));
  }

  /** The first frame matching, removed; 'ended' or 'timeout' otherwise. */
  next(match: (frame: Inbound) => boolean, ms = 2000): Promise<Inbound | 'ended' | 'timeout'> {
    return new Promise((resolve) => {
      const check = () => {
        const index = this.frames.findIndex(match);
        if (index >= 0) {
          finish();
          resolve(this.frames.splice(index, 1)[0]);
        } else if (this.ended) {
          finish();
          resolve('ended');
        }
      };
      const timer = setTimeout(() => {
        finish();
        resolve('timeout');
      }, ms);
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  async expectMethod(name: string, ms = 2000): Promise<Method> {
    const frame = await this.next((f) => f.type === 'method' && f.method.name === name, ms);
    assert.ok(typeof frame === 'object' && frame.type === 'method', `expected ${name}, got ${String(frame)}`);
    return frame.method;
  }

  /** The next connection.close or channel.close the broker sends. */
  async close(ms = 2000): Promise<Close | 'ended' | 'timeout'> {
    const frame = await this.next((f) => f.type === 'method' &&
      (f.method.name === 'connection.close' || f.method.name === 'channel.close'), ms);
    if (typeof frame !== 'object' || frame.type !== 'method') return frame as 'ended' | 'timeout';
    const method = frame.method as Extract<Method, { name: 'connection.close' | 'channel.close' }>;
    return {
      scope: method.name === 'connection.close' ? 'connection' : 'channel',
      channel: frame.channel,
      code: method.replyCode,
      text: method.replyText,
    };
  }

  /** Resolves true once the broker hangs up, false after `ms`. */
  hungUp(ms = 3000): Promise<boolean> {
    if (this.ended) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Header, start-ok, tune-ok, open: the last method the broker answers. */
  async handshake(options: { password?: string; frameMax?: number; channelMax?: number;
    heartbeat?: number; vhost?: string } = {}): Promise<Method> {
    await this.connected;
    this.send(PROTOCOL_HEADER);
    await this.expectMethod('connection.start');
    this.method(0, { name: 'connection.start-ok', clientProperties: new Map(), mechanism: 'PLAIN',
      response: Buffer.from(`\u0000guest\u0000${options.password ?? 'guest'}`), locale: 'en_US' });
    const tune = await this.next((f) => f.type === 'method' &&
      (f.method.name === 'connection.tune' || f.method.name === 'connection.close'));
    assert.ok(typeof tune === 'object' && tune.type === 'method', `no tune: ${String(tune)}`);
    if (tune.method.name !== 'connection.tune') return tune.method;
    this.method(0, { name: 'connection.tune-ok', channelMax: options.channelMax ?? 0,
      frameMax: options.frameMax ?? FRAME_MAX, heartbeat: options.heartbeat ?? 0 });
    this.method(0, { name: 'connection.open', virtualHost: options.vhost ?? '/' });
    const open = await this.next((f) => f.type === 'method' &&
      (f.method.name === 'connection.open-ok' || f.method.name === 'connection.close'));
    assert.ok(typeof open === 'object' && open.type === 'method', `no open-ok: ${String(open)}`);
    return open.method;
  }

  async openChannel(channel: number): Promise<void> {
    this.method(channel, { name: 'channel.open' });
    await this.expectMethod('channel.open-ok');
  }

  async declare(channel: number, queue: string): Promise<void> {
    this.method(channel, { name: 'queue.declare', queue, passive: false, durable: true, exclusive: false,
      autoDelete: false, noWait: false, arguments: new Map() });
    await this.expectMethod('queue.declare-ok');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function publishBytes(channel: number, routingKey: string, body: Buffer,
  options: { exchange?: string; mandatory?: boolean; immediate?: boolean; properties?: BasicProperties } = {}): Buffer {
  return encodeContent(channel, { name: 'basic.publish', exchange: options.exchange ?? '', routingKey,
    mandatory: options.mandatory ?? false, immediate: options.immediate ?? false },
  options.properties ?? {}, body, FRAME_MAX);
}

/** A connection past open-ok with channel 1 open. */
async function ready(options: Parameters<Raw['handshake']>[0] = {}): Promise<Raw> {
  const raw = new Raw();
  const opened = await raw.handshake(options);
  assert.equal(opened.name, 'connection.open-ok');
  await raw.openChannel(1);
  return raw;
}

/** A raw frame around `payload`. */
function frame(type: number, channel: number, payload: Buffer, end = 0xce): Buffer {
  const out = Buffer.alloc(payload.length + 8);
  out[0] = type;
  out.writeUInt16BE(channel, 1);
  out.writeUInt32BE(payload.length, 3);
  payload.copy(out, 7);
  out[out.length - 1] = end;
  return out;
}

/** A content header frame for class basic announcing `size` body bytes. */
function contentHeader(channel: number, size: number): Buffer {
  const payload = Buffer.alloc(14);
  payload.writeUInt16BE(60, 0);
  payload.writeUInt32BE(Math.floor(size / 2 ** 32), 4);
  payload.writeUInt32BE(size % 2 ** 32, 8);
  return frame(2, channel, payload);
}

/** basic.publish to '' with routing key 'q', as a method frame alone. */
const publishMethod = (channel: number) => frame(1, channel, Buffer.from([0, 60, 0, 40, 0, 0, 0, 1, 0x71, 0]));

async function expectConnectionClose(raw: Raw, code: number, ms = 2000): Promise<void> {
  const close = await raw.close(ms);
  assert.ok(typeof close === 'object', `expected connection.close ${code}, got ${String(close)}`);
  assert.deepEqual([close.scope, close.code], ['connection', code], close.text);
  raw.method(0, { name: 'connection.close-ok' });
  assert.equal(await raw.hungUp(), true, 'the broker hangs up after connection.close');
}

async function expectChannelClose(raw: Raw, channel: number, code: number): Promise<void> {
  const close = await raw.close();
  assert.ok(typeof close === 'object', `expected channel.close ${code}, got ${String(close)}`);
  assert.deepEqual([close.scope, close.channel, close.code], ['channel', channel, code], close.text);
  raw.method(channel, { name: 'channel.close-ok' });
}

// --- amqplib helpers ------------------------------------------------------------

async function connect(): Promise<ChannelModel> {
  const model = await amqp.connect(url);
  model.on('error', () => {});
  models.push(model);
  return model;
}

/** The reply code an amqplib promise is refused with. */
async function refusal(promise: Promise<unknown>): Promise<number | 'ok'> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

/** Resolves with the reply code the broker closes `emitter` with (0 if none in `ms`). */
function closedWith(emitter: NodeJS.EventEmitter, ms = 1500): Promise<number> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(0), ms);
    emitter.on('error', (err: { code?: number }) => {
      clearTimeout(timer);
      resolve(err.code ?? -1);
    });
  });
}

const stats = (queue: string) => broker.getQueue(queue).stats;

// --- the health check after every group -----------------------------------------

const SENTINEL = 'abuse-sentinel';
const SENTINEL_COUNT = 50;
let bystander: ChannelModel;

async function assertHealthy(): Promise<void> {
  // Confirmed before any abuse: all still there.
  assert.equal(stats(SENTINEL).ready, SENTINEL_COUNT, 'confirmed sentinel messages intact');
  // A connection opened before the abuse still works...
  const channel = await bystander.createChannel();
  await channel.assertQueue('abuse-bystander');
  channel.sendToQueue('abuse-bystander', Buffer.from('still here'));
  let got: false | { content: Buffer } = false;
  for (let i = 0; i < 50 && got === false; i++) {
    got = await channel.get('abuse-bystander', { noAck: true });
    if (got === false) await sleep(10);
  }
  assert.ok(got !== false && got.content.toString() === 'still here', 'bystander round trip');
  await channel.close();
  // ... and so does a fresh one.
  const fresh = await amqp.connect(url);
  const freshChannel = await fresh.createChannel();
  assert.equal((await freshChannel.checkQueue(SENTINEL)).messageCount, SENTINEL_COUNT);
  await fresh.close();
}

// --- long probes, started first and checked last ---------------------------------

/** ms until the broker hangs up on a client that sent only the header, or null. */
let handshakeProbe: Promise<number | null>;
/** ms until the broker drops a client that negotiated 1 s heartbeats and went silent. */
let silentProbe: Promise<number | null>;
/** Whether a client that keeps sending heartbeats is still connected after 3.5 s. */
let beatingProbe: Promise<boolean>;
/** Whether a client silent for 2.6 heartbeat intervals, then beating, is still connected. */
let pausingProbe: Promise<boolean>;
/** Whether a consumer on a slow link, beating every 300 ms, is still connected after 4 s. */
let slowLinkProbe: Promise<{ survived: boolean; afterMs: number }>;

/** A consumer reading a 10 MiB backlog through a ~640 KiB/s link, with 1 s heartbeats. */
async function slowLink(): Promise<{ survived: boolean; afterMs: number }> {
  const model = await amqp.connect(url);
  const channel = await model.createConfirmChannel();
  await channel.assertQueue('abuse-slow-link');
  for (let i = 0; i < 160; i++) channel.sendToQueue('abuse-slow-link', Buffer.alloc(64 * 1024, 3));
  await channel.waitForConfirms();
  await model.close();

  const links: Socket[] = [];
  const proxy = createServer((client) => {
    const upstream = tcpConnect(port, '127.0.0.1');
    links.push(client, upstream);
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      upstream.pause();
      client.write(chunk);
      setTimeout(() => upstream.resume(), Math.ceil((chunk.length / 65_536) * 100));
    });
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const raw = new Raw((proxy.address() as AddressInfo).port);
  await raw.handshake({ heartbeat: 1 });
  await raw.openChannel(1);
  const beat = setInterval(() => raw.send(Buffer.from([8, 0, 0, 0, 0, 0, 0, 0xce])), 300);
  raw.method(1, { name: 'basic.consume', queue: 'abuse-slow-link', consumerTag: 'slow', noLocal: false,
    noAck: false, exclusive: false, noWait: false, arguments: new Map() });
  const started = Date.now();
  const hungUp = await raw.hungUp(4000);
  clearInterval(beat);
  raw.destroy();
  for (const link of links) link.destroy();
  proxy.close();
  return { survived: !hungUp, afterMs: Date.now() - started };
}

function startProbes(): void {
  handshakeProbe = (async () => {
    const raw = new Raw();
    await raw.connected;
    raw.send(PROTOCOL_HEADER);
    const started = Date.now();
    // A second look: a stalled event loop runs both timers in one turn.
    return (await raw.hungUp(12_000)) || (await raw.hungUp(500)) ? Date.now() - started : null;
  })();
  silentProbe = (async () => {
    const raw = new Raw();
    await raw.handshake({ heartbeat: 1 });
    const started = Date.now();
    return (await raw.hungUp(6000)) ? Date.now() - started : null;
  })();
  beatingProbe = (async () => {
    const raw = new Raw();
    await raw.handshake({ heartbeat: 1 });
    const beat = setInterval(() => raw.send(Buffer.from([8, 0, 0, 0, 0, 0, 0, 0xce])), 300);
    const hungUp = await raw.hungUp(3500);
    clearInterval(beat);
    raw.destroy();
    return !hungUp;
  })();
  // Silent for 2.6 intervals right after the handshake, as a Celery
  // worker running a task on its solo pool: RabbitMQ's rule (checks once
  // an interval, from the handshake; two silent ones close) keeps it, one
  // that closes after 2 intervals of silence did not.
  pausingProbe = (async () => {
    const raw = new Raw();
    await raw.handshake({ heartbeat: 1 });
    if (await raw.hungUp(2600)) return false;
    const beat = setInterval(() => raw.send(Buffer.from([8, 0, 0, 0, 0, 0, 0, 0xce])), 300);
    raw.send(Buffer.from([8, 0, 0, 0, 0, 0, 0, 0xce]));
    const hungUp = await raw.hungUp(1500);
    clearInterval(beat);
    raw.destroy();
    return !hungUp;
  })();
  slowLinkProbe = slowLink();
}

before(async () => {
  dir = tempDir('usher-amqp-abuse-');
  broker = await openBroker(dir.path);
  server = await createAmqpServer({ broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: MAX_MESSAGE });
  port = (await server.listen(0, '127.0.0.1')).port;
  url = `amqp://guest:guest@127.0.0.1:${port}`;
  startProbes();

  bystander = await connect();
  const channel = await bystander.createConfirmChannel();
  await channel.assertQueue(SENTINEL);
  for (let i = 0; i < SENTINEL_COUNT; i++) channel.sendToQueue(SENTINEL, Buffer.from(`sentinel ${i}`));
  await channel.waitForConfirms();
  await channel.close();
});

after(async () => {
  for (const raw of raws) raw.destroy();
  for (const model of models) await model.close().catch(() => {});
  await server.close();
  await broker.close();
  dir.remove();
});

// --- handshake ------------------------------------------------------------------

describe('handshake abuse', () => {
  after(assertHealthy);

  it('answers a wrong protocol header, garbage or an early frame with AMQP 0-9-1 and hangs up', async () => {
    const attempts = [
      Buffer.from('AMQP\u0000\u0000\u0009\u0002', 'latin1'),
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      encodeMethodFrame(0, { name: 'connection.open', virtualHost: '/' }),
    ];
    for (const bytes of attempts) {
      const raw = new Raw();
      await raw.connected;
      raw.send(bytes);
      assert.equal(await raw.hungUp(), true);
      assert.deepEqual(Buffer.concat(raw.received), PROTOCOL_HEADER);
    }
  });

  it('refuses methods before start-ok with a hard error', async () => {
    for (const [channel, method] of [
      [0, { name: 'connection.open', virtualHost: '/' }],
      [0, { name: 'connection.tune-ok', channelMax: 0, frameMax: FRAME_MAX, heartbeat: 0 }],
      [1, { name: 'channel.open' }],
    ] as [number, Method][]) {
      const raw = new Raw();
      await raw.connected;
      raw.send(PROTOCOL_HEADER);
      await raw.expectMethod('connection.start');
      raw.method(channel, method);
      const close = await raw.close();
      assert.ok(typeof close === 'object' && close.scope === 'connection', method.name);
      // RabbitMQ says 504 ("unexpected method in connection state"); 503 is fair too.
      assert.ok(close.code === 503 || close.code === 504, `${method.name}: ${close.code} ${close.text}`);
      raw.method(0, { name: 'connection.close-ok' });
      assert.equal(await raw.hungUp(), true);
    }
  });

  it('refuses wrong credentials with 403 ACCESS_REFUSED', async () => {
    const raw = new Raw();
    const answer = await raw.handshake({ password: 'wrong' });
    assert.equal(answer.name, 'connection.close');
    assert.equal((answer as { replyCode: number }).replyCode, 403);
    raw.method(0, { name: 'connection.close-ok' });
    assert.equal(await raw.hungUp(), true);

    assert.equal(await refusal(amqp.connect(`amqp://guest:nope@127.0.0.1:${port}`)), -1, 'amqplib is refused');
  });

  it('refuses a start-ok over the pre-tune frame-max with 501, without buffering it', async () => {
    const raw = new Raw();
    await raw.connected;
    raw.send(PROTOCOL_HEADER);
    await raw.expectMethod('connection.start');
    raw.method(0, { name: 'connection.start-ok', mechanism: 'PLAIN', locale: 'en_US',
      clientProperties: new Map([['junk', { type: 'S', value: 'x'.repeat(200_000) }]]),
      response: Buffer.from('\u0000guest\u0000guest') });
    await expectConnectionClose(raw, 501);
  });

  it('refuses tune-ok frame-max below 4096 with 530 NOT_ALLOWED', async () => {
    const raw = new Raw();
    const answer = await raw.handshake({ frameMax: 1024 });
    assert.equal(answer.name, 'connection.close');
    assert.equal((answer as { replyCode: number }).replyCode, 530);
  });

  it('refuses tune-ok frame-max above the one offered with 530 NOT_ALLOWED', async () => {
    const raw = new Raw();
    const answer = await raw.handshake({ frameMax: FRAME_MAX * 8 });
    assert.equal(answer.name, 'connection.close');
    assert.equal((answer as { replyCode: number }).replyCode, 530);
  });

  it('refuses a vhost other than / with 530', async () => {
    const raw = new Raw();
    const answer = await raw.handshake({ vhost: 'elsewhere' });
    assert.equal(answer.name, 'connection.close');
    assert.equal((answer as { replyCode: number }).replyCode, 530);
  });

  it('refuses a channel past the negotiated channel-max with 530 NOT_ALLOWED', async () => {
    const raw = new Raw();
    assert.equal((await raw.handshake({ channelMax: 10 })).name, 'connection.open-ok');
    for (let channel = 1; channel <= 10; channel++) await raw.openChannel(channel);
    raw.method(11, { name: 'channel.open' });
    await expectConnectionClose(raw, 530);
  });

  it('refuses opening a channel twice with 504 CHANNEL_ERROR', async () => {
    const raw = await ready();
    raw.method(1, { name: 'channel.open' });
    await expectConnectionClose(raw, 504);
  });

  it('refuses frames on a channel never opened with 504 CHANNEL_ERROR', async () => {
    const raw = await ready();
    raw.method(5, { name: 'basic.qos', prefetchSize: 0, prefetchCount: 1, global: false });
    await expectConnectionClose(raw, 504);

    const publisher = await ready();
    publisher.publish(7, 'q', Buffer.from('x'));
    await expectConnectionClose(publisher, 504);
  });
});

// --- frames -----------------------------------------------------------------------

describe('frame abuse', () => {
  after(assertHealthy);

  it('closes with 501 on a bad frame-end byte', async () => {
    const raw = await ready();
    raw.send(frame(1, 1, Buffer.from([0, 60, 0, 10, 0, 0, 0, 0, 0, 0, 0]), 0x00));
    await expectConnectionClose(raw, 501);
  });

  it('refuses a frame over frame-max with 501 before buffering its payload', async () => {
    const before = process.memoryUsage();
    const raw = await ready();
    const header = Buffer.alloc(7);
    header[0] = 3;
    header.writeUInt16BE(1, 1);
    header.writeUInt32BE(0xffff_fff0, 3);
    raw.send(header);
    for (let i = 0; i < 8; i++) raw.send(Buffer.alloc(512 * 1024, 0x55));
    await expectConnectionClose(raw, 501);
    const grown = process.memoryUsage().rss - before.rss;
    assert.ok(grown < 64 * 1024 * 1024, `rss grew ${grown} bytes`);
  });

  it('answers content out of sequence with 505 UNEXPECTED_FRAME', async () => {
    const headerFirst = await ready();
    headerFirst.send(contentHeader(1, 1));
    await expectConnectionClose(headerFirst, 505);

    const bodyFirst = await ready();
    bodyFirst.send(frame(3, 1, Buffer.from('hello')));
    await expectConnectionClose(bodyFirst, 505);

    const methodMidContent = await ready();
    methodMidContent.send(Buffer.concat([publishMethod(1),
      frame(1, 1, Buffer.from([0, 60, 0, 10, 0, 0, 0, 0, 0, 0, 0]))]));
    await expectConnectionClose(methodMidContent, 505);
  });

  it('closes with 501 on a body longer than its header announced', async () => {
    const raw = await ready();
    raw.send(Buffer.concat([publishMethod(1), contentHeader(1, 3), frame(3, 1, Buffer.from('hello'))]));
    await expectConnectionClose(raw, 501);
  });

  it('answers a channel method on channel 0 with 504', async () => {
    const raw = await ready();
    raw.send(frame(1, 0, Buffer.from([0, 60, 0, 10, 0, 0, 0, 0, 0, 0, 0])));
    await expectConnectionClose(raw, 504);
  });

  it('answers an unknown class or method with 540 NOT_IMPLEMENTED', async () => {
    for (const ids of [[0, 99, 0, 10], [0, 60, 0, 99]]) {
      const raw = await ready();
      raw.send(frame(1, 1, Buffer.from(ids)));
      await expectConnectionClose(raw, 540);
    }
  });

  it('answers truncated method arguments with 502 SYNTAX_ERROR', async () => {
    const raw = await ready();
    raw.send(frame(1, 1, Buffer.from([0, 60, 0, 10, 0, 0])));
    await expectConnectionClose(raw, 502);
  });

  it('answers a field table nested 5000 deep or with a huge length with 502', async () => {
    // queue.declare 'q' whose arguments nest {a: {a: ... {}}}.
    let table = Buffer.from([0, 0, 0, 0]);
    for (let i = 0; i < 5000; i++) {
      const entry = Buffer.concat([Buffer.from([1, 0x61, 0x46]), table]);
      const size = Buffer.alloc(4);
      size.writeUInt32BE(entry.length);
      table = Buffer.concat([size, entry]);
    }
    const declare = Buffer.from([0, 50, 0, 10, 0, 0, 1, 0x71, 0]);
    const deep = await ready();
    deep.send(frame(1, 1, Buffer.concat([declare, table])));
    await expectConnectionClose(deep, 502);

    const huge = await ready();
    huge.send(frame(1, 1, Buffer.concat([declare, Buffer.from([0x7f, 0xff, 0xff, 0xff])])));
    await expectConnectionClose(huge, 502);
  });

  it('refuses a body over the max message size with 406 on the channel only', async () => {
    const raw = await ready();
    const size = 2 * MAX_MESSAGE;
    raw.send(Buffer.concat([publishMethod(1), contentHeader(1, size)]));
    for (let sent = 0; sent < size; sent += FRAME_MAX - 8) {
      raw.send(frame(3, 1, Buffer.alloc(Math.min(FRAME_MAX - 8, size - sent))));
    }
    await expectChannelClose(raw, 1, 406);
    await raw.openChannel(2);
    await raw.declare(2, 'abuse-after-too-large');
  });
});

// --- semantics --------------------------------------------------------------------

describe('semantic abuse', () => {
  after(assertHealthy);

  async function filled(queue: string, count: number) {
    const model = await connect();
    const channel = await model.createConfirmChannel();
    channel.on('error', () => {});
    await channel.assertQueue(queue);
    for (let i = 0; i < count; i++) channel.sendToQueue(queue, Buffer.from(`${queue} ${i}`));
    await channel.waitForConfirms();
    return channel;
  }

  it('closes the channel with 406 on an unknown delivery tag or a second ack', async () => {
    const raw = await ready();
    raw.method(1, { name: 'basic.ack', deliveryTag: 99, multiple: false });
    await expectChannelClose(raw, 1, 406);

    const channel = await filled('abuse-ack-twice', 2);
    const closed = closedWith(channel);
    const message = await channel.get('abuse-ack-twice');
    assert.ok(message !== false);
    channel.ack(message);
    channel.ack(message);
    assert.equal(await closed, 406);
    await sleep(50);
    assert.equal(stats('abuse-ack-twice').total, 1, 'the first ack counted');
  });

  it('acks everything with multiple and tag 0', async () => {
    const channel = await filled('abuse-ack-all', 5);
    const closed = closedWith(channel, 300);
    for (let i = 0; i < 5; i++) assert.ok(await channel.get('abuse-ack-all') !== false);
    channel.ackAll();
    assert.equal(await closed, 0);
    await sleep(50);
    assert.equal(stats('abuse-ack-all').total, 0);
  });

  it('closes the channel with 406 on a multiple ack of a tag already acked', async () => {
    const channel = await filled('abuse-ack-multiple-twice', 3);
    const closed = closedWith(channel, 500);
    await channel.get('abuse-ack-multiple-twice');
    const second = await channel.get('abuse-ack-multiple-twice');
    assert.ok(second !== false);
    channel.ack(second, true);
    channel.ack(second, true);
    assert.equal(await closed, 406);
  });

  it('requeues on nack/reject with requeue, drops without', async () => {
    const channel = await filled('abuse-nack', 2);
    const first = await channel.get('abuse-nack');
    assert.ok(first !== false);
    channel.nack(first, false, true);
    await sleep(30);
    const again = await channel.get('abuse-nack');
    assert.ok(again !== false && again.fields.redelivered, 'requeued and marked redelivered');
    channel.reject(again, true);
    await sleep(30);
    const got = [await channel.get('abuse-nack'), await channel.get('abuse-nack')];
    for (const message of got) {
      assert.ok(message !== false);
      channel.reject(message, false);
    }
    await sleep(50);
    assert.equal(stats('abuse-nack').total, 0);
  });

  it('answers get, consume, passive declares and publishes on missing things with 404', async () => {
    const model = await connect();
    const attempts: [string, (ch: amqp.ConfirmChannel) => Promise<unknown>][] = [
      ['get', (ch) => ch.get('abuse-missing')],
      ['consume', (ch) => ch.consume('abuse-missing', () => {})],
      ['passive queue', (ch) => ch.checkQueue('abuse-missing')],
      ['passive exchange', (ch) => ch.checkExchange('abuse-missing')],
      ['publish', (ch) => new Promise((resolve, reject) =>
        ch.publish('abuse-missing', 'k', Buffer.from('x'), {}, (err) => (err ? reject(err) : resolve(null))))],
    ];
    for (const [what, attempt] of attempts) {
      const channel = await model.createConfirmChannel();
      const closed = closedWith(channel);
      await attempt(channel).catch(() => {});
      assert.equal(await closed, 404, what);
    }
  });

  it('closes the connection with 530 when a consumer tag is reused', async () => {
    const model = await connect();
    const closed = closedWith(model);
    const channel = await model.createChannel();
    channel.on('error', () => {});
    await channel.assertQueue('abuse-tags');
    await channel.consume('abuse-tags', () => {}, { consumerTag: 'twice' });
    void channel.consume('abuse-tags', () => {}, { consumerTag: 'twice' }).catch(() => {});
    assert.equal(await closed, 530);
  });

  // Usher differs on purpose in one case: a redeclare that leaves an
  // argument out keeps the queue's setting instead of refusing (406 on
  // RabbitMQ), so a producer declaring a queue bare does not fight the
  // settings an operator gave it over HTTP. README, AMQP section.
  it('refuses a redeclare with other or unsupported arguments with 406', async () => {
    const model = await connect();
    const setup = await model.createChannel();
    await setup.assertQueue('abuse-args', { arguments: { 'x-message-ttl': 1000 } });
    assert.equal((await setup.assertQueue('abuse-args', { arguments: {} })).queue, 'abuse-args');
    for (const [what, args] of [
      ['other value', { 'x-message-ttl': 2000 }],
      ['unsupported', { 'x-expires': 10 }],
    ] as [string, Record<string, unknown>][]) {
      const channel = await model.createChannel();
      const closed = closedWith(channel);
      const answer = await refusal(channel.assertQueue('abuse-args', { arguments: args }));
      assert.equal(answer, 406, what);
      assert.equal(await closed, 406, what);
    }
  });

  it('refuses a queue named amq.* with 403', async () => {
    const channel = await (await connect()).createChannel();
    const closed = closedWith(channel);
    assert.equal(await refusal(channel.assertQueue('amq.abuse')), 403);
    assert.equal(await closed, 403);
  });

  it('returns a mandatory publish that routes nowhere, before its confirm', async () => {
    const channel = await (await connect()).createConfirmChannel();
    const events: string[] = [];
    channel.on('return', (message: amqp.Message) => events.push(`return ${message.fields.routingKey}`));
    await new Promise<void>((resolve) => channel.publish('', 'abuse-nowhere', Buffer.from('back'),
      { mandatory: true }, (err) => {
        events.push(err ? 'nack' : 'ack');
        resolve();
      }));
    assert.deepEqual(events, ['return abuse-nowhere', 'ack']);
  });

  it('closes the connection with 540 on basic.publish immediate=true', async () => {
    const raw = await ready();
    await raw.declare(1, 'abuse-immediate');
    raw.publish(1, 'abuse-immediate', Buffer.from('now'), { immediate: true });
    await expectConnectionClose(raw, 540, 500);
  });

  it('deletes an exclusive queue when its connection closes', async () => {
    const model = await amqp.connect(url);
    const channel = await model.createChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true });
    await channel.assertQueue('abuse-exclusive-named', { exclusive: true });
    assert.ok(broker.hasQueue(queue));
    await model.close();
    await sleep(100);
    assert.equal(broker.hasQueue(queue), false);
    assert.equal(broker.hasQueue('abuse-exclusive-named'), false);
  });

  it('refuses another connection an exclusive queue with 405 RESOURCE_LOCKED', async () => {
    const owner = await connect();
    await (await owner.createChannel()).assertQueue('abuse-locked', { exclusive: true });
    const other = await connect();
    for (const [what, attempt] of [
      ['passive declare', (ch: amqp.Channel) => ch.checkQueue('abuse-locked')],
      ['declare', (ch: amqp.Channel) => ch.assertQueue('abuse-locked', { exclusive: true })],
      ['consume', (ch: amqp.Channel) => ch.consume('abuse-locked', () => {})],
      ['delete', (ch: amqp.Channel) => ch.deleteQueue('abuse-locked')],
    ] as [string, (ch: amqp.Channel) => Promise<unknown>][]) {
      const channel = await other.createChannel();
      channel.on('error', () => {});
      assert.equal(await refusal(attempt(channel)), 405, what);
    }
    await other.close();
    assert.ok(broker.hasQueue('abuse-locked'), 'the owner keeps its queue');
  });

  it('never lets an exclusive declare take a shared queue and its confirmed messages along', async () => {
    await filled('abuse-shared', 3);
    const intruder = await amqp.connect(url);
    intruder.on('error', () => {});
    const channel = await intruder.createChannel();
    channel.on('error', () => {});
    const answer = await refusal(channel.assertQueue('abuse-shared', { exclusive: true }));
    await intruder.close().catch(() => {});
    await sleep(100);
    assert.ok(broker.hasQueue('abuse-shared'), 'shared queue deleted by the intruder closing');
    assert.equal(stats('abuse-shared').ready, 3);
    assert.equal(answer, 405);
  });

  it('does not delete a queue of the same name declared later by someone else', async () => {
    const first = await amqp.connect(url);
    const firstChannel = await first.createChannel();
    await firstChannel.assertQueue('abuse-reused', { exclusive: true });
    await firstChannel.deleteQueue('abuse-reused');
    await filled('abuse-reused', 2);
    await first.close();
    await sleep(100);
    assert.ok(broker.hasQueue('abuse-reused'), 'queue deleted by a connection that no longer owned it');
    assert.equal(stats('abuse-reused').ready, 2);
  });

  it('refuses an auto-delete redeclare of a durable queue with 406, keeping its confirmed messages', async () => {
    await filled('abuse-orders', 5);
    const model = await connect();
    const channel = await model.createChannel();
    channel.on('error', () => {});
    const answer = await refusal(channel.assertQueue('abuse-orders', { autoDelete: true }));
    if (answer === 'ok') {
      // Accepted: a consumer comes and goes, as an auto-delete queue's would.
      const { consumerTag } = await channel.consume('abuse-orders', () => {}, { noAck: false });
      await channel.cancel(consumerTag);
      await sleep(100);
    }
    assert.ok(broker.hasQueue('abuse-orders'), 'a durable queue with confirmed messages was auto-deleted');
    assert.equal(stats('abuse-orders').ready, 5);
    assert.equal(answer, 406);
  });

  it('refuses a redeclare with another durable flag with 406', async () => {
    const model = await connect();
    await (await model.createChannel()).assertQueue('abuse-durable', { durable: true });
    const channel = await model.createChannel();
    channel.on('error', () => {});
    assert.equal(await refusal(channel.assertQueue('abuse-durable', { durable: false })), 406);
  });

  it('refuses a second consumer on a queue with an exclusive consumer with 403', async () => {
    const model = await connect();
    const first = await model.createChannel();
    await first.assertQueue('abuse-exclusive-consumer');
    await first.consume('abuse-exclusive-consumer', () => {}, { exclusive: true });
    const second = await model.createChannel();
    second.on('error', () => {});
    assert.equal(await refusal(second.consume('abuse-exclusive-consumer', () => {})), 403);
  });

  it('keeps every publish sent before channel.close', async () => {
    const model = await connect();
    const channel = await model.createChannel();
    await channel.assertQueue('abuse-publish-then-close-channel');
    for (let i = 0; i < 100; i++) channel.sendToQueue('abuse-publish-then-close-channel', Buffer.from(`c${i}`));
    await channel.close();
    // Waited for, not slept on: under load a write may take longer than a
    // fixed pause (a publish lost would still fail it).
    await until('100 ready', () => stats('abuse-publish-then-close-channel').ready === 100, 5_000);
  });

  it('keeps every publish sent before connection.close', async () => {
    // Raw bytes: amqplib itself sends connection.close ahead of the
    // publishes it still buffers, and RabbitMQ drops those too.
    const raw = await ready();
    await raw.declare(1, 'abuse-publish-then-close-connection');
    const bytes: Buffer[] = [];
    for (let i = 0; i < 100; i++) bytes.push(publishBytes(1, 'abuse-publish-then-close-connection', Buffer.from(`k${i}`)));
    bytes.push(encodeMethodFrame(0, { name: 'connection.close', replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 }));
    raw.send(Buffer.concat(bytes));
    await raw.expectMethod('connection.close-ok');
    await until('100 ready', () => stats('abuse-publish-then-close-connection').ready === 100, 5_000);
  });

  it('confirms publishes pipelined right behind confirm.select', async () => {
    const raw = await ready();
    await raw.declare(1, 'abuse-pipelined-confirm');
    raw.send(Buffer.concat([
      encodeMethodFrame(1, { name: 'confirm.select', noWait: false }),
      publishBytes(1, 'abuse-pipelined-confirm', Buffer.from('one')),
      publishBytes(1, 'abuse-pipelined-confirm', Buffer.from('two')),
    ]));
    await raw.expectMethod('confirm.select-ok');
    const acked = new Set<number>();
    for (let i = 0; i < 2 && !(acked.has(1) && acked.has(2)); i++) {
      const ack = await raw.expectMethod('basic.ack', 500) as { deliveryTag: number; multiple: boolean };
      if (ack.multiple) for (let tag = 1; tag <= ack.deliveryTag; tag++) acked.add(tag);
      else acked.add(ack.deliveryTag);
    }
    assert.deepEqual([...acked].sort(), [1, 2]);
  });

  it('answers publishes that land together with one multiple ack, not one each', async () => {
    const raw = await ready();
    await raw.declare(1, 'abuse-confirm-batch');
    raw.method(1, { name: 'confirm.select', noWait: false });
    await raw.expectMethod('confirm.select-ok');
    // One write: the broker reads them as one chunk and stores them together.
    const count = 50;
    raw.send(Buffer.concat(Array.from({ length: count },
      (_, i) => publishBytes(1, 'abuse-confirm-batch', Buffer.from(`m${i}`)))));
    let acks = 0;
    let confirmedUpTo = 0;
    while (confirmedUpTo < count) {
      const ack = await raw.expectMethod('basic.ack', 2_000) as { deliveryTag: number; multiple: boolean };
      assert.equal(ack.multiple, true);
      confirmedUpTo = ack.deliveryTag;
      acks++;
    }
    assert.equal(confirmedUpTo, count);
    // One per chunk the publishes came in: 50 before this was batched.
    assert.ok(acks <= 3, `${acks} acks for ${count} publishes`);
  });

  it('never nacks a stored publish, or closes its channel, for a consumer with a small frame-max', async () => {
    const consumer = await ready({ frameMax: 4096 });
    await consumer.declare(1, 'abuse-small-frames');
    consumer.method(1, { name: 'basic.consume', queue: 'abuse-small-frames', consumerTag: 'small',
      noLocal: false, noAck: false, exclusive: false, noWait: false, arguments: new Map() });
    await consumer.expectMethod('basic.consume-ok');

    const wide = { headers: { wide: 'h'.repeat(6000) } };
    const model = await connect();
    const confirming = await model.createConfirmChannel();
    const confirmingClosed = closedWith(confirming, 500);
    const confirm = await new Promise<string>((resolve) => confirming.sendToQueue('abuse-small-frames',
      Buffer.from('wide 1'), wide, (err) => resolve(err ? 'nack' : 'ack')));
    const plain = await model.createChannel();
    const plainClosed = closedWith(plain, 500);
    plain.sendToQueue('abuse-small-frames', Buffer.from('wide 2'), wide);
    const outcome = {
      confirm,
      confirmingChannelClosedWith: await confirmingClosed,
      plainChannelClosedWith: await plainClosed,
      stored: stats('abuse-small-frames').total,
    };
    consumer.destroy();
    await sleep(100);
    assert.deepEqual({ ...outcome, readyAfterConsumerLeft: stats('abuse-small-frames').ready },
      { stored: 2, confirm: 'ack', confirmingChannelClosedWith: 0, plainChannelClosedWith: 0, readyAfterConsumerLeft: 2 });
  });

  it('serves 1,000 channels on one connection', async () => {
    const model = await connect();
    const channels = await Promise.all(Array.from({ length: 1000 }, () => model.createChannel()));
    await channels[999].assertQueue('abuse-many-channels');
    channels[0].sendToQueue('abuse-many-channels', Buffer.from('x'));
    // Unconfirmed: poll, bounded, rather than guess how long the disk takes.
    let got: Awaited<ReturnType<(typeof channels)[0]['get']>> = false;
    for (let i = 0; i < 300 && got === false; i++) {
      got = await channels[500].get('abuse-many-channels', { noAck: true });
      if (got === false) await sleep(10);
    }
    assert.ok(got !== false);
    await model.close();
  });

  it('serves 200 connections at once', async () => {
    const many = await Promise.all(Array.from({ length: 200 }, () => amqp.connect(url)));
    const channels = await Promise.all(many.map((model) => model.createChannel()));
    const replies = await Promise.all(channels.map((channel) => channel.checkQueue(SENTINEL)));
    assert.ok(replies.every((reply) => reply.messageCount === SENTINEL_COUNT));
    await Promise.all(many.map((model) => model.close()));
  });

  it('settles an ack on a channel with 4,000 busy consumers without stalling the broker', async () => {
    const raw = await ready();
    await raw.declare(1, 'abuse-many-consumers');
    const consumers = 4000;
    // One unacked per consumer, and as many for the channel as a whole.
    raw.method(1, { name: 'basic.qos', prefetchSize: 0, prefetchCount: 1, global: false });
    await raw.expectMethod('basic.qos-ok');
    raw.method(1, { name: 'basic.qos', prefetchSize: 0, prefetchCount: consumers, global: true });
    await raw.expectMethod('basic.qos-ok');
    const publish = (from: number, count: number) => {
      const bytes: Buffer[] = [];
      for (let i = from; i < from + count; i++) bytes.push(publishBytes(1, 'abuse-many-consumers', Buffer.from(String(i))));
      raw.send(Buffer.concat(bytes));
    };
    const consumes: Buffer[] = [];
    for (let i = 0; i < consumers; i++) {
      consumes.push(encodeMethodFrame(1, { name: 'basic.consume', queue: 'abuse-many-consumers', consumerTag: `c${i}`,
        noLocal: false, noAck: false, exclusive: false, noWait: true, arguments: new Map() }));
    }
    raw.send(Buffer.concat(consumes));
    publish(0, consumers);
    for (let i = 0; i < 200 && stats('abuse-many-consumers').inFlight < consumers; i++) await sleep(20);
    assert.equal(stats('abuse-many-consumers').inFlight, consumers, 'each consumer holds one');
    // A backlog none of them has room for.
    publish(consumers, 100);
    for (let i = 0; i < 100 && stats('abuse-many-consumers').ready < 100; i++) await sleep(10);
    assert.equal(stats('abuse-many-consumers').ready, 100);

    // Each of the 4,000 wakes one ack causes walks all 4,000 subscribers.
    const started = Date.now();
    let turns = 0;
    const ticker = setInterval(() => turns++, 1);
    raw.method(1, { name: 'basic.ack', deliveryTag: 1, multiple: false });
    for (let i = 0; i < 500 && stats('abuse-many-consumers').acked < 1; i++) await sleep(2);
    const tookMs = Date.now() - started;
    clearInterval(ticker);
    raw.destroy();
    assert.ok(tookMs < 150, `one ack took ${tookMs} ms, the event loop turned ${turns} times meanwhile`);
  });

  it('keeps every confirmed message when a connection dies mid-publish', async () => {
    const raw = await ready();
    await raw.declare(1, 'abuse-mid-publish');
    raw.method(1, { name: 'confirm.select', noWait: false });
    await raw.expectMethod('confirm.select-ok');
    let confirmed = 0;
    for (let batch = 0; batch < 20 && confirmed === 0; batch++) {
      const bytes: Buffer[] = [];
      for (let i = 0; i < 100; i++) bytes.push(publishBytes(1, 'abuse-mid-publish', Buffer.from(String(batch * 100 + i))));
      raw.send(Buffer.concat(bytes));
      const ack = await raw.next((f) => f.type === 'method' && f.method.name === 'basic.ack', 50);
      if (typeof ack === 'object' && ack.type === 'method') confirmed = (ack.method as { deliveryTag: number }).deliveryTag;
    }
    raw.publish(1, 'abuse-mid-publish', Buffer.from('last'));
    raw.destroy();
    assert.ok(confirmed > 0, 'something was confirmed');
    await sleep(100);
    const bodies = new Set(broker.peek('abuse-mid-publish', { limit: 1000, offset: 0 })
      .concat(broker.peek('abuse-mid-publish', { limit: 1000, offset: 1000 }))
      .concat(broker.peek('abuse-mid-publish', { limit: 1000, offset: 2000 }))
      .map((m) => m.body.toString()));
    for (let i = 0; i < confirmed; i++) assert.ok(bodies.has(String(i)), `confirmed message ${i} lost`);
  });
});

// --- memory -----------------------------------------------------------------------

describe('memory under slow readers', () => {
  after(assertHealthy);

  const BODY = Buffer.alloc(64 * 1024, 7);

  it('gives a consumer that never reads only what its socket takes, not a whole backlog', async () => {
    const channel = await (await connect()).createConfirmChannel();
    await channel.assertQueue('abuse-backlog');
    for (let i = 0; i < 480; i++) channel.sendToQueue('abuse-backlog', BODY); // 30 MiB
    await channel.waitForConfirms();

    const slow = await ready();
    slow.method(1, { name: 'basic.consume', queue: 'abuse-backlog', consumerTag: 'slow', noLocal: false,
      noAck: true, exclusive: false, noWait: false, arguments: new Map() });
    await slow.expectMethod('basic.consume-ok');
    slow.socket.pause();
    await sleep(500);
    const taken = stats('abuse-backlog').delivered;
    slow.destroy();
    // About 4 MiB of socket buffer plus what the kernel holds: not 30 MiB.
    assert.ok(taken <= 320, `${taken} of 480 messages (64 KiB each) taken by a consumer that reads nothing`);
  });

  it('holds deliveries to a slow consumer while publishing goes on', async () => {
    const slow = await ready();
    await slow.declare(1, 'abuse-steady');
    slow.method(1, { name: 'basic.consume', queue: 'abuse-steady', consumerTag: 'slow', noLocal: false,
      noAck: true, exclusive: false, noWait: false, arguments: new Map() });
    await slow.expectMethod('basic.consume-ok');
    slow.socket.pause();

    const channel = await (await connect()).createConfirmChannel();
    for (let i = 0; i < 480; i++) {
      channel.sendToQueue('abuse-steady', BODY);
      if (i % 60 === 59) await channel.waitForConfirms();
    }
    await channel.waitForConfirms();
    await sleep(200);
    const { delivered, ready: left } = stats('abuse-steady');
    slow.destroy();
    assert.ok(delivered <= 320, `${delivered} of 480 delivered to a consumer that reads nothing`);
    assert.equal(delivered + left, 480);
  });

  it('stops reading from a publisher that never reads its basic.returns', async () => {
    const raw = await ready();
    raw.socket.pause();
    const message = publishBytes(1, 'abuse-nowhere', BODY, { mandatory: true });
    const deadline = Date.now() + 3000;
    let written = 0;
    // 96 MiB offered; with backpressure the writes stall after a few MiB.
    while (written < 1536 && Date.now() < deadline) {
      if (!raw.socket.write(message)) {
        const drained = await Promise.race([
          new Promise((resolve) => raw.socket.once('drain', () => resolve(true))),
          sleep(Math.max(1, deadline - Date.now())).then(() => false),
        ]);
        if (!drained) break;
      }
      written++;
    }
    raw.destroy();
    const mib = (written * message.length) / 2 ** 20;
    assert.ok(mib < 48, `the broker read ${mib.toFixed(0)} MiB of publishes while its returns went unread`);
  });
});

// --- probes -----------------------------------------------------------------------

describe('timers', () => {
  it('drops a client silent for 2 to 3 heartbeat intervals, as RabbitMQ; keeps one that beats', async () => {
    // Checked once an interval from the handshake: the first check hears
    // connection.open, the next two nothing.
    const silentFor = await silentProbe;
    // Timed from the client's end of the handshake, a little after the
    // broker's clock started: 1995 ms once on a busy machine.
    assert.ok(silentFor !== null && silentFor >= 1900 && silentFor <= 3800,
      `silent client dropped after ${silentFor} ms`);
    assert.equal(await beatingProbe, true);
    assert.equal(await pausingProbe, true, 'dropped a client silent for 2.6 intervals');
  });

  it('keeps a consumer on a slow link that keeps sending heartbeats', async () => {
    const { survived, afterMs } = await slowLinkProbe;
    assert.ok(survived, `dropped after ${afterMs} ms although it sent a heartbeat every 300 ms`);
  });

  it('hangs up on a client that sends the header and then nothing (10 s handshake timeout)', async () => {
    const after = await handshakeProbe;
    assert.ok(after !== null, 'still connected after 12 s');
  });
});
