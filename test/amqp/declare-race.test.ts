// queue.declare writes a new queue's AMQP-only arguments (amqp-queues.json)
// before the queue itself. A create of the same name that lands while that
// write is in flight, over HTTP or by another AMQP connection, must leave
// one queue with one set of settings: the declare that lost is refused
// (406 PRECONDITION_FAILED naming the argument) or, asking the same, is an
// idempotent success; it never changes the winner's settings or leaves its
// own arguments on the winner's queue, and a restart keeps all of it.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';

import amqp from 'amqplib';

import type { Broker } from '../../src/broker/broker.js';
import { QueueFeatureTable, type QueueFeatures } from '../../src/amqp/queue-features.js';
import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let server: AmqpServer;
let url: string;
const realSet = QueueFeatureTable.prototype.set;

async function start(): Promise<void> {
  broker = await openBroker(dir.path);
  server = await createAmqpServer({
    broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 1024 * 1024,
  });
  const { port } = await server.listen(0, '127.0.0.1');
  url = `amqp://guest:guest@127.0.0.1:${port}`;
}

async function stop(): Promise<void> {
  await server.close();
  await broker.close();
}

/**
 * Runs `meanwhile` while the first write of non-empty arguments for
 * `queue` is in flight, as a slow disk would leave it.
 */
function duringArgumentsWrite(queue: string, meanwhile: () => Promise<void>): Promise<void> {
  let done!: () => void;
  const ran = new Promise<void>((resolve) => { done = resolve; });
  let armed = true;
  QueueFeatureTable.prototype.set = async function (this: QueueFeatureTable,
    name: string, features: QueueFeatures) {
    if (armed && name === queue && Object.keys(features).length > 0) {
      armed = false;
      const writing = realSet.call(this, name, features);
      await meanwhile().finally(done);
      return writing;
    }
    return realSet.call(this, name, features);
  };
  return ran;
}

/** The AMQP-only arguments on disk, by queue. */
function savedArguments(): Record<string, QueueFeatures> {
  try {
    return (JSON.parse(readFileSync(join(dir.path, 'amqp-queues.json'), 'utf8')) as {
      queues: Record<string, QueueFeatures>;
    }).queues;
  } catch {
    return {};
  }
}

/** What a declare got: 'ok' or the reply code it was refused with. */
async function declare(name: string, args: Record<string, unknown>): Promise<string> {
  const connection = await amqp.connect(url);
  connection.on('error', () => {});
  const channel = await connection.createChannel();
  channel.on('error', () => {});
  try {
    await channel.assertQueue(name, { durable: true, arguments: args });
    await connection.close();
    return 'ok';
  } catch (err) {
    await connection.close();
    return String((err as { code?: number }).code);
  }
}

beforeEach(async () => {
  dir = tempDir('usher-declare-race-');
  await start();
});

afterEach(async () => {
  QueueFeatureTable.prototype.set = realSet;
  await stop();
  dir.remove();
});

it('an HTTP create during the declare keeps its settings; the declare asking more gets 406',
  async () => {
    const http = duringArgumentsWrite('q', async () => {
      await broker.createQueue('q', { maxAttempts: 5 });
    });
    const answer = await declare('q', { 'x-expires': 60_000 });
    await http;

    assert.equal(answer, '406', 'the declare asked an x-expires the HTTP queue does not have');
    assert.equal(broker.settingsOf('q').maxAttempts, 5, 'the declare changed the HTTP settings');
    QueueFeatureTable.prototype.set = realSet;
    await stop();
    assert.deepEqual(savedArguments(), {}, 'the declare left its arguments on the HTTP queue');
    await start();
    assert.equal(broker.settingsOf('q').maxAttempts, 5);
    assert.equal(await declare('q', {}), 'ok');
    assert.equal(await declare('q', { 'x-expires': 60_000 }), '406');
  });

it('two declares with other x-expires at once: one wins, the other gets 406, across a restart',
  async () => {
    let second: Promise<string> | undefined;
    const first = duringArgumentsWrite('q', async () => {
      second = declare('q', { 'x-expires': 70_000 });
      // Long enough for the second declare to reach its own write.
      await new Promise((resolve) => setTimeout(resolve, 100));
    });
    const answers = [await declare('q', { 'x-expires': 60_000 })];
    await first;
    answers.push(await (second as Promise<string>));

    assert.deepEqual([...answers].sort(), ['406', 'ok']);
    const winner = answers[0] === 'ok' ? 60_000 : 70_000;
    QueueFeatureTable.prototype.set = realSet;
    await stop();
    assert.deepEqual(savedArguments(), { q: { expiresMs: winner } });
    await start();
    assert.equal(await declare('q', { 'x-expires': winner }), 'ok', 'the winner refused');
    assert.equal(await declare('q', { 'x-expires': 130_000 - winner }), '406');
  });
