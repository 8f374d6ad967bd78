// When a connection stops reading its socket (connection-output.ts): for
// a peer that does not take what we send, and for publishes past
// PUBLISH_HIGH_WATER. The two overlap; whichever ends last must resume
// the reader, as no other event comes to do it.
//
// Driven over a fake socket whose kernel side is full until the test
// drains it, as a peer that stopped reading would leave it: the output
// alone, then a whole connection over a broker whose disk is held.

import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { it } from 'node:test';

import { Authenticator } from '../../src/auth/authenticator.js';
import { UserStore } from '../../src/auth/user-store.js';
import { AmqpConnection } from '../../src/amqp/connection.js';
import { ConnectionOutput } from '../../src/amqp/connection-output.js';
import { PROTOCOL_HEADER } from '../../src/amqp/constants.js';
import { DirectReplies } from '../../src/amqp/direct-reply.js';
import { AmqpFrameDecoder } from '../../src/amqp/frame-decoder.js';
import { encodeContent, encodeMethodFrame } from '../../src/amqp/frame-encoder.js';
import type { Method } from '../../src/amqp/methods.js';
import { Topology } from '../../src/amqp/topology.js';
import { heldDisk, openBroker, silentLogger, tempDir, until } from '../helpers.js';
import { PausableSocketDouble } from './socket-double.js';

/** Past the output's 4 MiB limit. */
const BIG = Buffer.alloc(5 * 1024 * 1024);
/** PUBLISH_HIGH_WATER. */
const HIGH_WATER = 20_000;

/** A socket whose peer takes nothing until drained(). */
class FullSocket extends PausableSocketDouble {
  writableLength = 0;
  writableNeedDrain = false;
  readonly destroyed = false;

  write(bytes: Buffer): boolean {
    this.writableLength += bytes.length;
    this.writableNeedDrain = true;
    return false;
  }

  /** The peer read it all: Node then emits 'drain'. */
  drained(): void {
    this.writableLength = 0;
    this.writableNeedDrain = false;
  }
}

function outputOver(socket: FullSocket): ConnectionOutput {
  const connection = { phase: 'open-done', frameMax: 131_072 };
  return new ConnectionOutput(
    connection as unknown as AmqpConnection,
    socket as unknown as Socket,
    { forEachChannel: () => {} },
  );
}

it('resumes reading when publishes settle after the drain that came while they held it', async () => {
  const socket = new FullSocket();
  const output = outputOver(socket);

  // The peer does not read: reading stops.
  output.write(BIG);
  await Promise.resolve();
  assert.equal(socket.isPaused(), true, 'paused for drain');

  // Publishes read before it wait for the disk, past the high-water mark.
  output.publishesStarted(HIGH_WATER);
  // The peer reads again; the publishes still hold reading.
  socket.drained();
  output.onDrained();
  assert.equal(socket.isPaused(), true, 'still paused for the publishes');

  // They land: nothing else will come to resume reading (no confirms, no
  // heartbeats), so this must.
  output.publishesSettled(HIGH_WATER);
  assert.equal(socket.isPaused(), false, 'reading resumed once both pauses ended');
});

it('keeps reading paused when publishes settle while the peer still does not read', async () => {
  const socket = new FullSocket();
  const output = outputOver(socket);

  output.write(BIG);
  await Promise.resolve();
  output.publishesStarted(HIGH_WATER);
  output.publishesSettled(HIGH_WATER);
  assert.equal(socket.isPaused(), true, 'still paused for drain');

  socket.drained();
  output.onDrained();
  assert.equal(socket.isPaused(), false, 'resumed by the drain');
});

it('keeps reading paused for drain when publishes held it first, and resumes on drain', async () => {
  const socket = new FullSocket();
  const output = outputOver(socket);

  output.publishesStarted(HIGH_WATER);
  assert.equal(socket.isPaused(), true, 'paused for the publishes');
  output.write(BIG);
  await Promise.resolve();
  output.publishesSettled(HIGH_WATER);
  assert.equal(socket.isPaused(), true, 'still paused: the peer does not read');

  socket.drained();
  output.onDrained();
  assert.equal(socket.isPaused(), false, 'resumed by the drain');
});

/** A socket whose peer stops reading while `full`; 'drain' once it reads again. */
class PeerSocket extends PausableSocketDouble {
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 40001;
  writableLength = 0;
  writableNeedDrain = false;
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
    return !this.writableNeedDrain;
  }

  /** The peer stops reading: 5 MiB wait in the socket, past the output's limit. */
  stopReading(): void {
    this.writableLength = 5 * 1024 * 1024;
    this.writableNeedDrain = true;
  }

  readAgain(): void {
    this.writableLength = 0;
    this.writableNeedDrain = false;
    this.emit('drain');
  }

  end(): this {
    return this.destroy();
  }

  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      this.emit('close');
    }
    return this;
  }

  send(channel: number, method: Method): void {
    this.emit('data', encodeMethodFrame(channel, method));
  }

  count(name: string): number {
    return this.methods.filter((method) => method === name).length;
  }
}

it('a connection reads again once a drain and its publishes landing both came', {
  timeout: 30_000,
}, async () => {
  const dir = tempDir('usher-amqp-output-');
  const disk = heldDisk();
  const broker = await openBroker(dir.path, { storeIo: disk.io, sync: true });
  const topology = await Topology.open(dir.path, broker, silentLogger);
  const socket = new PeerSocket();
  const connection = new AmqpConnection(socket as unknown as Socket, {
    broker, topology, logger: silentLogger, frameMax: 131_072, channelMax: 16,
    heartbeatSeconds: 0, maxMessageBytes: 1024 * 1024,
    authenticator: new Authenticator({ store: UserStore.inMemory() }),
    maxConsumersPerQueue: 10_000, refusal: null, heldBodies: { bytes: 0 },
    heldBodyLimits: { connection: 64 * 1024 * 1024, all: 256 * 1024 * 1024 },
    consumerTimeoutMs: 30 * 60 * 1000, directReplies: new DirectReplies(),
  });
  try {
    await broker.createQueue('landing', { maxAttempts: 0 });
    socket.emit('data', PROTOCOL_HEADER);
    socket.send(0, {
      name: 'connection.start-ok', clientProperties: new Map(), mechanism: 'PLAIN',
      response: Buffer.from('\u0000guest\u0000guest'), locale: 'en_US',
    });
    await until('connection.tune', () => socket.count('connection.tune') === 1);
    socket.send(0, { name: 'connection.tune-ok', channelMax: 0, frameMax: 131_072, heartbeat: 0 });
    socket.send(0, { name: 'connection.open', virtualHost: '/' });
    socket.send(1, { name: 'channel.open' });
    await until('channel.open-ok', () => socket.count('channel.open-ok') === 1);

    // One chunk: a method answered while the peer does not read (reading
    // stops for drain), then 20,000 publishes (PUBLISH_HIGH_WATER) that
    // wait for the held disk. No confirms, no heartbeats.
    disk.hold();
    socket.stopReading();
    const publish: Method = {
      name: 'basic.publish', exchange: '', routingKey: 'landing',
      mandatory: false, immediate: false,
    };
    const one = encodeContent(1, publish, { deliveryMode: 2 }, Buffer.from('x'), 131_072);
    const flow = encodeMethodFrame(1, { name: 'channel.flow', active: true });
    socket.emit('data', Buffer.concat([flow, ...Array.from({ length: 20_000 }, () => one)]));
    assert.equal(socket.isPaused(), true, 'paused');

    // The peer reads again while the publishes still wait; then they land.
    socket.readAgain();
    disk.release();
    await until('the publishes in the queue',
      () => broker.getQueue('landing').stats.total === 20_000);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(socket.isPaused(), false, 'reading again: nothing else will resume it');
  } finally {
    disk.release();
    socket.destroy();
    await connection.cleanedUp;
    await topology.flush();
    await broker.close();
    dir.remove();
  }
});
