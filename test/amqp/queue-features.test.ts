// AMQP-only queue arguments (dead-letter exchange, x-expires, single active
// consumer, storage hints) are kept in <data>/amqp-queues.json and come
// back after a restart; deleting the queue forgets them. The hints of a
// queue made before the file kept them are unknown, and not compared.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
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

/** What a redeclare of `queue` with `args` gets: 'ok', or the refusal's text. */
async function redeclare(
  url: string,
  queue: string,
  args: Record<string, unknown>,
): Promise<string> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    await channel.assertQueue(queue, { arguments: args });
    return 'ok';
  } catch (err) {
    return (err as Error).message;
  } finally {
    await connection.close().catch(() => {});
  }
}

it('does not compare the hints of queues made before it kept them', async () => {
  await stop();
  let url = await start();
  assert.equal(await redeclare(url, 'hinted.before', { 'x-queue-mode': 'lazy' }), 'ok');
  assert.equal(await redeclare(url, 'hinted.before.dlx', {
    'x-queue-mode': 'lazy', 'x-dead-letter-exchange': 'dlx',
  }), 'ok');
  await stop();
  // As the version before kept them: no hints, and no entry without features.
  const path = join(dir.path, 'amqp-queues.json');
  const saved = JSON.parse(readFileSync(path, 'utf8'));
  assert.equal(saved.version, 2);
  assert.deepEqual(saved.queues['hinted.before'],
    { hints: { 'x-queue-mode': { type: 'S', value: 'lazy' } } });
  const olderQueues = { ...saved.queues };
  delete olderQueues['hinted.before'];
  olderQueues['hinted.before.dlx'] = { deadLetterExchange: 'dlx' };
  writeFileSync(path, JSON.stringify({ version: 1, queues: olderQueues }));

  for (let run = 0; run < 2; run++) {
    url = await start();
    assert.equal(await redeclare(url, 'hinted.before', { 'x-queue-mode': 'default' }), 'ok');
    assert.equal(await redeclare(url, 'hinted.before', {}), 'ok');
    const dlx = { 'x-dead-letter-exchange': 'dlx' };
    assert.equal(await redeclare(url, 'hinted.before.dlx', dlx), 'ok');
    // Its other arguments are compared as before.
    assert.match(await redeclare(url, 'hinted.before.dlx', {}),
      /inequivalent arg 'x-dead-letter-exchange'/);
    if (run === 0) {
      assert.equal(await redeclare(url, 'hinted.after', {}), 'ok');
    } else {
      // Made after: no entry means declared without hints, also after a restart.
      assert.match(await redeclare(url, 'hinted.after', { 'x-queue-mode': 'lazy' }),
        /406 .*'x-queue-mode' .* received the value 'lazy' of type 'longstr' but current is none/);
    }
    await stop();
  }
  const upgraded = JSON.parse(readFileSync(path, 'utf8'));
  assert.equal(upgraded.version, 2);
  assert.equal(upgraded.queues['hinted.before'].hints, 'unknown');
  assert.deepEqual(upgraded.queues['hinted.before.dlx'],
    { deadLetterExchange: 'dlx', hints: 'unknown' });
  assert.equal(upgraded.queues['hinted.after'], undefined);
});
