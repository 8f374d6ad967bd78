// A redeclare over AMQP must match the queue's durability whoever made
// the queue. One made over HTTP with `durability: memory` is gone after a
// restart with every message in it; an AMQP client declaring it
// `durable: true` was answered declare-ok, and then lost persistent
// messages confirmed to it at the next clean stop. RabbitMQ refuses such a
// declare (406), and so must Usher.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, it } from 'node:test';

import amqp from 'amqplib';

import type { Broker } from '../../src/broker/broker.js';
import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let server: AmqpServer;
let url: string;

beforeEach(async () => {
  dir = tempDir('usher-durable-flag-');
  broker = await openBroker(dir.path);
  server = await createAmqpServer({
    broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 1024 * 1024,
  });
  const { port } = await server.listen(0, '127.0.0.1');
  url = `amqp://guest:guest@127.0.0.1:${port}`;
});

afterEach(async () => {
  await server.close();
  await broker.close();
  dir.remove();
});

/** The declare's outcome: 'ok', or the channel's closing message. */
async function declare(name: string, durable: boolean): Promise<string> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    await channel.assertQueue(name, { durable });
    return 'ok';
  } catch (err) {
    return (err as Error).message;
  } finally {
    await connection.close();
  }
}

it('a memory queue made over HTTP is refused to a durable declare', async () => {
  await broker.createQueue('billing', { durability: 'memory' });

  const outcome = await declare('billing', true);

  assert.match(outcome, /406 .*inequivalent arg 'durable' for queue 'billing'/);
  assert.match(outcome, /received 'true' but current is 'false'/);
  assert.equal(broker.settingsOf('billing').durability, 'memory');
});

it('a memory queue made over HTTP takes a transient declare', async () => {
  await broker.createQueue('billing', { durability: 'memory' });

  assert.equal(await declare('billing', false), 'ok');
});

it('a logged queue made over HTTP takes a durable declare, not a transient one', async () => {
  await broker.createQueue('orders', {});
  await broker.createQueue('audit', { durability: 'os' });

  assert.equal(await declare('orders', true), 'ok');
  assert.equal(await declare('audit', true), 'ok');
  assert.match(await declare('orders', false), /received 'false' but current is 'true'/);
});

it('a queue declared transient over AMQP is still refused to a durable declare', async () => {
  assert.equal(await declare('scratch', false), 'ok');

  assert.match(await declare('scratch', true), /received 'true' but current is 'false'/);
  assert.equal(await declare('scratch', false), 'ok');
});
