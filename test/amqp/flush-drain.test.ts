// Regression test for a wedge (fixed in 3d09ad7): a connection stops
// handing deliveries to consumers while more than 4 MiB wait to be
// written, and used to start again only on the socket's 'drain'. When the
// kernel takes a whole flush at once, socket.write() returns true and no
// 'drain' ever comes, so a no-ack consumer (which sends nothing back to
// wake the queue) stalled for good.
//
// Whether a real socket takes 4 MiB whole depends on the kernel's buffers,
// so this test drives an AmqpConnection over a fake socket that always
// takes everything and never emits 'drain', as such a kernel would.

import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, it } from 'node:test';

import { Authenticator } from '../../src/auth/authenticator.js';
import { UserStore } from '../../src/auth/user-store.js';
import type { Broker } from '../../src/broker/broker.js';
import { AmqpConnection } from '../../src/amqp/connection.js';
import { PROTOCOL_HEADER } from '../../src/amqp/constants.js';
import { DirectReplies } from '../../src/amqp/direct-reply.js';
import { AmqpFrameDecoder } from '../../src/amqp/frame-decoder.js';
import { encodeMethodFrame } from '../../src/amqp/frame-encoder.js';
import type { Method } from '../../src/amqp/methods.js';
import { Topology } from '../../src/amqp/topology.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';
import { PausableSocketDouble } from './socket-double.js';

const QUEUE = 'flush-drain';
const MESSAGES = 200;
/** 200 x 64 KiB = 12.5 MiB: three times over the 4 MiB write limit. */
const BODY = Buffer.alloc(64 * 1024, 7);

/** What the kernel does when it has room: takes every write at once. */
class RoomySocket extends PausableSocketDouble {
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 40000;
  readonly writableLength = 0;
  destroyed = false;
  private readonly decoder = new AmqpFrameDecoder({ from: 'server', frameMax: 131_072 });
  readonly methods: string[] = [];

  setNoDelay(): this {
    return this;
  }

  write(bytes: Buffer): boolean {
    for (const frame of this.decoder.push(bytes)) {
      if (frame.type === 'method') this.methods.push(frame.method.name);
    }
    // Taken whole: Node answers true and will emit no 'drain'.
    return true;
  }

  end(): this {
    this.destroy();
    return this;
  }

  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      this.emit('close');
    }
    return this;
  }

  /** A client frame, as if read from the wire. */
  send(channel: number, method: Method): void {
    this.emit('data', encodeMethodFrame(channel, method));
  }

  count(name: string): number {
    return this.methods.filter((method) => method === name).length;
  }
}

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let topology: Topology;

before(async () => {
  dir = tempDir('usher-amqp-flush-');
  broker = await openBroker(dir.path);
  topology = await Topology.open(dir.path, broker, silentLogger);
  await broker.createQueue(QUEUE, { maxAttempts: 0 });
  const inputs = Array.from({ length: MESSAGES }, () => ({ body: BODY }));
  await broker.publish(QUEUE, inputs);
});

after(async () => {
  await topology.flush();
  await broker.close();
  dir.remove();
});

/** An AmqpConnection over `socket`, logged in and open, with channel 1 open. */
async function openConnection(socket: RoomySocket): Promise<AmqpConnection> {
  const connection = new AmqpConnection(socket as unknown as Socket, {
    broker,
    topology,
    logger: silentLogger,
    frameMax: 131_072,
    channelMax: 16,
    heartbeatSeconds: 0,
    maxMessageBytes: 1024 * 1024,
    authenticator: new Authenticator({ store: UserStore.inMemory() }),
    maxConsumersPerQueue: 10_000,
    refusal: null,
    heldBodies: { bytes: 0 },
    heldBodyLimits: { connection: 64 * 1024 * 1024, all: 256 * 1024 * 1024 },
    consumerTimeoutMs: 30 * 60 * 1000,
    directReplies: new DirectReplies(),
  });

  socket.emit('data', PROTOCOL_HEADER);
  socket.send(0, {
    name: 'connection.start-ok',
    clientProperties: new Map(),
    mechanism: 'PLAIN',
    response: Buffer.from('\u0000guest\u0000guest'),
    locale: 'en_US',
  });
  // The login is checked asynchronously: tune-ok waits for connection.tune.
  for (let tries = 0; tries < 1000 && socket.count('connection.tune') === 0; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  socket.send(0, { name: 'connection.tune-ok', channelMax: 0, frameMax: 131_072, heartbeat: 0 });
  socket.send(0, { name: 'connection.open', virtualHost: '/' });
  socket.send(1, { name: 'channel.open' });
  return connection;
}

it('a no-ack consumer gets every message when the socket takes each flush whole', async () => {
  const socket = new RoomySocket();
  const connection = await openConnection(socket);
  socket.send(1, {
    name: 'basic.consume',
    queue: QUEUE,
    consumerTag: 'roomy',
    noLocal: false,
    noAck: true,
    exclusive: false,
    noWait: false,
    arguments: new Map(),
  });

  // Bounded: without a wake after a whole flush, deliveries stop near
  // 4 MiB (about 64 messages) and never resume.
  const deadline = Date.now() + 5000;
  while (socket.count('basic.deliver') < MESSAGES && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  assert.equal(socket.count('basic.consume-ok'), 1);
  assert.equal(socket.count('basic.deliver'), MESSAGES,
    'every message delivered although no drain event came');
  assert.equal(socket.isPaused(), false, 'the reader is not left paused');
  socket.destroy();
  await connection.cleanedUp;
});

// Replies and deliveries leave at the end of the task that wrote them, not
// after whatever else the event loop has queued: at load, waiting for the
// next check phase cost up to 4-5 ms once in a thousand flushes.
it('frames reach the socket before their task hands back to the event loop', async () => {
  const socket = new RoomySocket();
  const connection = await openConnection(socket);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(socket.count('channel.open-ok'), 1);

  // Answered as it is read, not in order behind slower methods.
  socket.send(1, { name: 'channel.flow', active: true });
  await Promise.resolve();
  assert.equal(socket.count('channel.flow-ok'), 1, 'written within the task, not a turn later');

  socket.destroy();
  await connection.cleanedUp;
});
