// Queues that come and go with their clients (exclusive, auto-delete) are
// logged at debug: a Celery deployment makes and drops hundreds of reply
// and event queues an hour, about 1,500 info lines in the new user's hour.
// Other queues stay at info, where an operator sees them.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import amqp from 'amqplib';
import pino from 'pino';

import { createAmqpServer } from '../../src/amqp/server.js';
import type { Broker } from '../../src/broker/broker.js';
import { openBroker, tempDir } from '../helpers.js';

const dir = tempDir('usher-amqp-log-levels-');
after(() => dir.remove());

const DEBUG = 20;
const INFO = 30;

interface LogLine {
  level: number;
  msg: string;
  queue?: string;
  replyCode?: number;
  reason?: string;
}

/** Runs `use` against a broker and AMQP listener logging at debug into `lines`. */
async function withLoggingServer(
  use: (url: string, lines: LogLine[], broker: Broker) => Promise<void>,
): Promise<void> {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const broker = await openBroker(dir.path, { logger });
  const server = await createAmqpServer({ broker, logger, dataDir: dir.path, maxMessageBytes: 1 << 20 });
  const { port } = await server.listen(0, '127.0.0.1');
  try {
    await use(`amqp://guest:guest@127.0.0.1:${port}`, lines, broker);
  } finally {
    await server.close();
    await broker.close();
  }
}

test('exclusive and auto-delete queues are logged at debug, others at info', { timeout: 10_000 }, () =>
  withLoggingServer(async (url, lines, broker) => {
    const connection = await amqp.connect(url);
    const channel = await connection.createChannel();
    await channel.assertQueue('kept', { durable: true });
    const { queue: exclusive } = await channel.assertQueue('', { exclusive: true });
    await channel.assertQueue('auto', { autoDelete: true });
    const { consumerTag } = await channel.consume('auto', () => {});
    await channel.cancel(consumerTag);
    await channel.deleteQueue('kept');
    // Deleted by the client, and by x-expires (breaker: both logged at info).
    const { queue: deletedByClient } = await channel.assertQueue('', { exclusive: true });
    await channel.deleteQueue(deletedByClient);
    const { queue: expiring } = await channel.assertQueue('', { exclusive: true, durable: false, expires: 200 });
    const deadline = Date.now() + 3000;
    while (broker.hasQueue(expiring) && Date.now() < deadline) await sleep(20);
    await connection.close();
    await sleep(100);

    const levelOf = (msg: string, queue: string) =>
      lines.filter((line) => line.msg === msg && line.queue === queue).map((line) => line.level);
    assert.deepEqual(levelOf('queue created', 'kept'), [INFO]);
    assert.deepEqual(levelOf('queue deleted', 'kept'), [INFO]);
    assert.deepEqual(levelOf('queue created', exclusive), [DEBUG]);
    assert.deepEqual(levelOf('queue deleted', exclusive), [DEBUG], 'deleted with its connection');
    assert.deepEqual(levelOf('queue created', 'auto'), [DEBUG]);
    assert.deepEqual(levelOf('queue deleted', 'auto'), [DEBUG], 'deleted with its last consumer');
    assert.deepEqual(levelOf('queue deleted', deletedByClient), [DEBUG], 'queue.delete');
    assert.deepEqual(levelOf('queue deleted', expiring), [DEBUG], 'x-expires');
    assert.deepEqual(levelOf('queue expired (x-expires)', expiring), [DEBUG]);
  }));

test('a channel closed by an error is logged at info, with the code and reason', { timeout: 10_000 }, () =>
  // An operator looking for why an application's publishes stopped must
  // find the 404 (a new user found no line for any channel error).
  withLoggingServer(async (url, lines) => {
    const connection = await amqp.connect(url);
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    await assert.rejects(channel.checkExchange('no-such-exchange'));
    await connection.close();

    const closes = lines.filter((line) => line.msg === 'closing channel');
    assert.equal(closes.length, 1, JSON.stringify(lines));
    assert.equal(closes[0].level, INFO);
    assert.equal(closes[0].replyCode, 404);
    assert.match(closes[0].reason ?? '', /no-such-exchange/);
  }));
