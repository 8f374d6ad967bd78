// AMQP-only queue arguments (dead-letter exchange, x-expires, single active
// consumer) are kept in <data>/amqp-queues.json and come back after a
// restart; deleting the queue forgets them.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import amqp from 'amqplib';

import type { Broker } from '../../src/broker/broker.js';
import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';

const dir = tempDir('usher-amqp-features-');
let running: { broker: Broker; server: AmqpServer; url: string } | null = null;

async function start(): Promise<string> {
  const broker = await openBroker(dir.path);
  const server = await createAmqpServer({
    broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 1024 * 1024,
  });
  const { port } = await server.listen(0, '127.0.0.1');
  running = { broker, server, url: `amqp://guest:guest@127.0.0.1:${port}` };
  return running.url;
}

async function stop(): Promise<void> {
  if (running === null) return;
  await running.server.close();
  await running.broker.close();
  running = null;
}

after(async () => {
  await stop();
  dir.remove();
});

it('keeps dead-letter exchanges and x-expires across a restart, and forgets deleted queues', async () => {
  let connection = await amqp.connect(await start());
  let channel = await connection.createChannel();
  await channel.assertExchange('dlx', 'direct');
  await channel.assertQueue('dead');
  await channel.bindQueue('dead', 'dlx', 'gone');
  await channel.assertQueue('work', {
    arguments: { 'x-dead-letter-exchange': 'dlx', 'x-dead-letter-routing-key': 'gone' },
  });
  await channel.assertQueue('fleeting', { arguments: { 'x-expires': 400 } });
  await channel.assertQueue('doomed', { arguments: { 'x-single-active-consumer': true } });
  await channel.deleteQueue('doomed');
  const confirming = await connection.createConfirmChannel();
  confirming.sendToQueue('work', Buffer.from('poison'));
  await confirming.waitForConfirms();
  await connection.close();
  await stop();

  const saved = JSON.parse(readFileSync(join(dir.path, 'amqp-queues.json'), 'utf8'));
  assert.deepEqual(Object.keys(saved.queues).sort(), ['fleeting', 'work']);

  connection = await amqp.connect(await start());
  channel = await connection.createChannel();
  channel.on('error', () => {});
  // A redeclare must name the same arguments: they were kept.
  await assert.rejects(channel.assertQueue('work'), /inequivalent arg 'x-dead-letter-exchange'/);
  channel = await connection.createChannel();
  let message: false | amqp.GetMessage = false;
  for (let i = 0; i < 50 && message === false; i++) {
    message = await channel.get('work');
    if (message === false) await sleep(10);
  }
  assert.ok(message !== false);
  channel.reject(message, false);
  let dead: false | amqp.GetMessage = false;
  for (let i = 0; i < 100 && dead === false; i++) {
    dead = await channel.get('dead', { noAck: true });
    if (dead === false) await sleep(10);
  }
  assert.ok(dead !== false, 'dead-lettered through dlx after the restart');
  assert.equal(dead.fields.exchange, 'dlx');
  assert.equal(dead.fields.routingKey, 'gone');

  // The expiry clock started again at the restart; nobody used the queue.
  await sleep(900);
  assert.equal(running!.broker.hasQueue('fleeting'), false);
  await connection.close();
  assert.ok(existsSync(join(dir.path, 'amqp-queues.json')));
});
