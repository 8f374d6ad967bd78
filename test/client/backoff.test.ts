// The client under overload signals: publishes refused with QUEUE_FULL or
// OVERLOADED are retried after Retry-After plus jitter, a bounded number
// of times, then reported as MessagesShedError with the messages; other
// refusals are not retried. The AMQP client pauses while blocked.

import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import { createAmqpServer } from '../../src/amqp/server.js';
import { DEFAULT_RETRY, retryDelay } from '../../src/client/backoff.js';
import { connect, connectAmqp, MessagesShedError, UsherClientError } from '../../src/client/index.js';
import { createHttpServer } from '../../src/http/server.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';

const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function httpBroker(): Promise<{ broker: Broker; url: string }> {
  const dir = tempDir('usher-backoff-');
  const broker = await openBroker(dir.path);
  const app = createHttpServer(broker, { logger: silentLogger, processMetrics: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(async () => {
    await app.close();
    await broker.close();
    dir.remove();
  });
  const { port } = app.server.address() as AddressInfo;
  return { broker, url: `http://127.0.0.1:${port}` };
}

describe('retry delays', () => {
  it('never come before Retry-After, and spread by a growing step', () => {
    const policy = { ...DEFAULT_RETRY, baseMs: 100, maxMs: 1000, random: () => 0.5 };
    assert.equal(retryDelay(policy, 1, 1000), 1050);
    assert.equal(retryDelay(policy, 2, 1000), 1100);
    assert.equal(retryDelay(policy, 10, undefined), 500, 'the step is capped at maxMs');
    assert.equal(retryDelay({ ...policy, random: () => 0 }, 3, 5000), 5000);
  });
});

describe('publishing against a full queue', () => {
  it('retries after Retry-After and succeeds once room is made', async () => {
    const { broker, url } = await httpBroker();
    await broker.createQueue('q', { maxLength: 1 });
    const waits: number[] = [];
    const client = connect(url, {
      retry: {
        retries: 3,
        random: () => 0,
        sleep: async (ms) => {
          waits.push(ms);
          // A consumer takes the waiting message while the publisher waits.
          if (waits.length === 2) await broker.receive('q', { max: 1, waitMs: 0 });
        },
      },
    });
    await client.publish('q', 'first');

    const { id } = await client.publish('q', 'second', { priority: 3 });
    assert.ok(id);
    assert.deepEqual(waits, [1000, 1000], 'Retry-After: 1 honoured on each retry');
    assert.equal(broker.getQueue('q').stats.total, 2);
  });

  it('reports shed messages with a typed error once the retries run out', async () => {
    const { broker, url } = await httpBroker();
    await broker.createQueue('q', { maxLength: 0 });
    let waits = 0;
    const client = connect(url, { retry: { retries: 2, sleep: async () => void waits++ } });

    const batch = [{ body: 'a' }, { body: { b: 1 }, priority: 2 }];
    const err = await client.publishBatch('q', batch).then(
      () => assert.fail('published into a full queue'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof MessagesShedError);
    assert.ok(err instanceof UsherClientError);
    assert.equal(err.code, 'QUEUE_FULL');
    assert.equal(err.status, 429);
    assert.equal(err.reason, 'max-length');
    assert.equal(err.retryAfterMs, 1000);
    assert.equal(err.attempts, 3);
    assert.deepEqual(err.messages, batch);
    assert.equal(waits, 2);
    assert.equal(broker.getQueue('q').stats.total, 0);
  });

  it('does not retry other refusals', async () => {
    const { url } = await httpBroker();
    let waits = 0;
    const client = connect(url, { retry: { sleep: async () => void waits++ } });
    await assert.rejects(client.publish('missing', 'x'), { code: 'QUEUE_NOT_FOUND' });
    assert.equal(waits, 0);
  });
});

describe('AMQP client and connection.blocked', () => {
  it('pauses publishes while blocked and sends them once unblocked', async () => {
    const dir = tempDir('usher-blocked-');
    let waiting = 0;
    const broker = await openBroker(dir.path, {
      admission: { pressureBacklog: 10, criticalBacklog: 20, holdMs: 0, sampleMs: 60_000 },
      signals: { backlog: () => ({ waiting, published: 0, acked: 0 }) },
    });
    const server = await createAmqpServer({
      broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 1024 * 1024,
    });
    const { port } = await server.listen(0, '127.0.0.1');
    const client = await connectAmqp(`amqp://guest:guest@127.0.0.1:${port}`);
    cleanups.push(async () => {
      await client.close();
      await server.close();
      await broker.close();
      dir.remove();
    });
    await broker.createQueue('q', {});

    waiting = 25;
    broker.admission!.sample();
    for (let i = 0; i < 100 && !client.isBlocked; i++) await sleep(10);
    assert.equal(client.isBlocked, true);

    let settled = false;
    const publish = client.publish('q', 'low').then(() => (settled = true));
    await sleep(100);
    assert.equal(settled, false, 'held while blocked');
    assert.equal(broker.getQueue('q').stats.total, 0);

    waiting = 0;
    broker.admission!.sample();
    await publish;
    assert.equal(broker.getQueue('q').stats.total, 1);
  });
});
