// A transaction's publishes wait in memory until tx.commit, and the broker
// keeps reading a connection it has told is blocked (blocking.ts): a
// channel that published in a transaction and never committed held
// 400 MiB at a 300 MiB memory budget, and kept reading. A transaction may
// hold MAX_HELD_BYTES (tx.ts); past it, its channel is closed with 406.

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import { encodeContent } from '../../src/amqp/frame-encoder.js';
import type { Method } from '../../src/amqp/methods.js';
import { HELD_PUBLISH_BYTES, MAX_HELD_BYTES } from '../../src/amqp/tx.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';
import { FRAME_MAX, Raw } from './raw-client.js';

const BODY_BYTES = 64 * 1024;
/** Publishes of BODY_BYTES a transaction may hold. */
const FITTING = Math.floor(MAX_HELD_BYTES / (BODY_BYTES + HELD_PUBLISH_BYTES));

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let server: AmqpServer;
let port: number;

before(async () => {
  dir = tempDir('usher-tx-held-');
  broker = await openBroker(dir.path);
  server = await createAmqpServer({
    broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 1024 * 1024,
  });
  ({ port } = await server.listen(0, '127.0.0.1'));
});

after(async () => {
  await server.close();
  await broker.close();
  dir.remove();
});

/** A connection with channel 1 in tx mode. */
async function transactional(): Promise<Raw> {
  const raw = new Raw(port);
  await raw.open('tx');
  return raw;
}

/** Sends `count` publishes of BODY_BYTES to `queue` as fast as the socket takes them. */
async function publish(raw: Raw, queue: string, count: number): Promise<void> {
  const method: Method = {
    name: 'basic.publish', exchange: '', routingKey: queue, mandatory: false, immediate: false,
  };
  const frames = encodeContent(1, method, {}, Buffer.alloc(BODY_BYTES, 0x74), FRAME_MAX);
  for (let i = 0; i < count && !raw.socket.destroyed; i++) {
    if (raw.socket.write(frames)) continue;
    await new Promise((resolve) => raw.socket.once('drain', resolve));
  }
}

it('closes a transaction\'s channel with 406 once it holds too much, storing none', async () => {
  await broker.createQueue('tx-held', {});
  const raw = await transactional();

  await publish(raw, 'tx-held', FITTING + 1);
  // Answered with commit-ok if the channel held it all.
  raw.method(1, { name: 'tx.commit' });
  const close = await raw.expect('channel.close', 'tx.commit-ok');
  assert.ok(close !== null && close.name === 'channel.close', `answered ${close?.name}`);
  assert.equal(close.replyCode, 406);
  assert.match(close.replyText, /may hold 67108864 bytes of publishes before tx\.commit/);
  raw.method(1, { name: 'channel.close-ok' });

  // The connection is still usable; what the channel held is gone.
  raw.method(2, { name: 'channel.open' });
  assert.ok(await raw.expect('channel.open-ok'));
  assert.equal(broker.getQueue('tx-held').stats.total, 0);
  raw.close();
});

it('counts each transaction afresh after tx.commit', async () => {
  await broker.createQueue('tx-twice', {});
  const raw = await transactional();

  for (let round = 0; round < 2; round++) {
    await publish(raw, 'tx-twice', FITTING);
    raw.method(1, { name: 'tx.commit' });
    const answer = await raw.expect('tx.commit-ok', 'channel.close');
    assert.equal(answer?.name, 'tx.commit-ok', `round ${round}: ${JSON.stringify(answer)}`);
  }
  assert.equal(broker.getQueue('tx-twice').stats.total, 2 * FITTING);
  raw.close();
});
