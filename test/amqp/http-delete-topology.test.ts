// A queue deleted without AMQP (HTTP DELETE /queues/{name}, the CLI) must
// take its AMQP state with it, as an AMQP queue.delete does: its bindings,
// its AMQP arguments (x-expires, exclusive) and their timers. A queue made
// again under the same name is a new queue: it gets none of the old one's
// bindings, and the old one's x-expires or exclusive owner must not delete
// it with the messages it holds.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import amqp from 'amqplib';

import type { Broker } from '../../src/broker/broker.js';
import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import { openBroker, silentLogger, tempDir, text } from '../helpers.js';

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let server: AmqpServer;
let url: string;

beforeEach(async () => {
  dir = tempDir('usher-http-delete-');
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

it('a queue made again after a delete outside AMQP gets none of the old bindings', async () => {
  const connection = await amqp.connect(url);
  const channel = await connection.createConfirmChannel();
  await channel.assertExchange('events', 'direct');
  await channel.assertQueue('q');
  await channel.bindQueue('q', 'events', 'k');

  // What DELETE /queues/q and then POST /queues do.
  await broker.deleteQueue('q');
  await broker.createQueue('q', {});

  channel.publish('events', 'k', Buffer.from('stray'));
  await channel.waitForConfirms();
  await connection.close();
  assert.equal(broker.getQueue('q').stats.ready, 0, 'the old binding routed into the new queue');
});

it("the old queue's x-expires does not delete a queue made again outside AMQP", async () => {
  const connection = await amqp.connect(url);
  const channel = await connection.createChannel();
  await channel.assertQueue('q', { arguments: { 'x-expires': 300 } });
  await connection.close();

  await broker.deleteQueue('q');
  await broker.createQueue('q', {});
  await broker.publish('q', [{ body: text('kept') }]);

  await sleep(900);
  assert.ok(broker.hasQueue('q'), 'the new queue was expired by the old one\'s x-expires');
  assert.equal(broker.getQueue('q').stats.ready, 1);
});

it("the old queue's exclusive owner does not delete a queue made again outside AMQP", async () => {
  const connection = await amqp.connect(url);
  const channel = await connection.createChannel();
  await channel.assertQueue('q', { exclusive: true, durable: true });

  await broker.deleteQueue('q');
  await broker.createQueue('q', {});
  await broker.publish('q', [{ body: text('kept') }]);

  await connection.close();
  await sleep(200);
  assert.ok(broker.hasQueue('q'), 'the owner\'s close deleted the new queue');
  assert.equal(broker.getQueue('q').stats.ready, 1);
});

it('a restart drops bindings to queues the log no longer has (a crash between the two files)', async () => {
  const connection = await amqp.connect(url);
  const channel = await connection.createConfirmChannel();
  await channel.assertExchange('events', 'direct');
  await channel.assertQueue('q');
  await channel.bindQueue('q', 'events', 'k');
  await connection.close();
  await server.close();

  // The queue's delete reaches the log but not exchanges.journal, as a
  // SIGKILL between the two writes leaves it (no AMQP listener here).
  await broker.deleteQueue('q');
  await broker.close();

  broker = await openBroker(dir.path);
  server = await createAmqpServer({
    broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 1024 * 1024,
  });
  const { port } = await server.listen(0, '127.0.0.1');
  await broker.createQueue('q', {});
  const again = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`);
  const confirming = await again.createConfirmChannel();
  confirming.publish('events', 'k', Buffer.from('stray'));
  await confirming.waitForConfirms();
  await again.close();
  assert.equal(broker.getQueue('q').stats.ready, 0, 'a binding of the deleted queue came back');
});

it('a consumer cancelled by a delete outside AMQP does not re-arm the old x-expires', async () => {
  const connection = await amqp.connect(url);
  const channel = await connection.createChannel();
  await channel.assertQueue('q', { arguments: { 'x-expires': 300 } });
  await channel.consume('q', () => {});

  await broker.deleteQueue('q');
  await broker.createQueue('q', {});
  await broker.publish('q', [{ body: text('kept') }]);
  await sleep(900);
  await connection.close();
  assert.ok(broker.hasQueue('q'), 'the new queue was expired by the old one\'s x-expires');
});
