// When a connection stops reading its socket (connection-output.ts): for
// a peer that does not take what we send, and for publishes past
// PUBLISH_HIGH_WATER. The two overlap; whichever ends last must resume
// the reader, as no other event comes to do it.
//
// Driven over a fake socket whose kernel side is full until the test
// drains it, as a peer that stopped reading would leave it.

import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { it } from 'node:test';

import type { AmqpConnection } from '../../src/amqp/connection.js';
import { ConnectionOutput } from '../../src/amqp/connection-output.js';

/** Past the output's 4 MiB limit. */
const BIG = Buffer.alloc(5 * 1024 * 1024);
/** PUBLISH_HIGH_WATER. */
const HIGH_WATER = 20_000;

/** A socket whose peer takes nothing until drained(). */
class FullSocket {
  writableLength = 0;
  writableNeedDrain = false;
  readonly destroyed = false;
  private paused = false;

  write(bytes: Buffer): boolean {
    this.writableLength += bytes.length;
    this.writableNeedDrain = true;
    return false;
  }

  cork(): void {}

  uncork(): void {}

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    this.paused = false;
    return this;
  }

  isPaused(): boolean {
    return this.paused;
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
