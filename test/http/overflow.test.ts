// Per-queue limits over HTTP and across a restart: settings on declare and
// update, 429 QUEUE_FULL with Retry-After, displaced messages in the
// dead-letter queue with reason overflow (or dropped without one).

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import { openBroker } from '../helpers.js';
import { call, startHttp, type Harness } from './harness.js';

let h: Harness;

beforeEach(async () => {
  h = await startHttp();
});

afterEach(async () => {
  await h.close();
});

const publish = (queue: string, body: string, priority = 0) =>
  call(h.app, 'POST', `/queues/${queue}/messages`, { body, priority });

describe('queue limits over HTTP', () => {
  it('sets and changes limits on declare, refusing a bad policy', async () => {
    const created = await call(h.app, 'PUT', '/queues/q', { maxLength: 2, maxBytes: 100 });
    assert.equal(created.status, 201);
    assert.equal(created.body.settings.maxLength, 2);
    assert.equal(created.body.settings.maxBytes, 100);
    assert.equal(created.body.settings.overflow, 'reject-publish');

    const updated = await call(h.app, 'PUT', '/queues/q', { overflow: 'drop-oldest' });
    assert.equal(updated.status, 200);
    assert.equal(updated.body.settings.maxLength, 2);
    assert.equal(updated.body.settings.overflow, 'drop-oldest');

    const bad = await call(h.app, 'PUT', '/queues/q', { overflow: 'drop-newest' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'INVALID_ARGUMENT');
    assert.equal(bad.body.error.field, 'overflow');
  });

  it('answers 429 QUEUE_FULL with Retry-After, level and reason (reject-publish)', async () => {
    await call(h.app, 'PUT', '/queues/q', { maxLength: 1 });
    assert.equal((await publish('q', 'a')).status, 201);

    const refused = await publish('q', 'b');
    assert.equal(refused.status, 429);
    assert.equal(refused.headers['retry-after'], '1');
    assert.equal(refused.body.error.code, 'QUEUE_FULL');
    assert.equal(refused.body.error.reason, 'max-length');
    assert.equal(refused.body.error.level, 'normal');

    const batch = await call(h.app, 'POST', '/queues/q/messages/batch', {
      messages: [{ body: 'c' }, { body: 'd' }],
    });
    assert.equal(batch.status, 429);
    const info = await call(h.app, 'GET', '/queues/q');
    assert.equal(info.body.stats.total, 1);
    assert.equal(info.body.stats.refused, 3);
  });

  it('dead-letters the oldest with reason overflow (drop-oldest)', async () => {
    await call(h.app, 'PUT', '/queues/q', {
      maxLength: 2,
      overflow: 'drop-oldest',
      deadLetter: 'q.dlq',
    });
    for (const body of ['a', 'b', 'c']) assert.equal((await publish('q', body)).status, 201);

    const dead = await call(h.app, 'GET', '/queues/q.dlq/messages?limit=10');
    assert.equal(dead.status, 200);
    assert.equal(dead.body.messages.length, 1);
    assert.equal(dead.body.messages[0].body, 'a');
    assert.equal(dead.body.messages[0].headers['x-usher-death-reason'], 'overflow');
    const info = await call(h.app, 'GET', '/queues/q');
    assert.equal(info.body.stats.total, 2);
    assert.equal(info.body.stats.overflowed, 1);
  });

  it('drops (counted) when the queue has no dead-letter queue', async () => {
    await call(h.app, 'PUT', '/queues/q', { maxLength: 1, overflow: 'drop-oldest' });
    await publish('q', 'a');
    await publish('q', 'b');
    const info = await call(h.app, 'GET', '/queues/q');
    assert.equal(info.body.stats.total, 1);
    assert.equal(info.body.stats.dropped, 1);
    assert.equal(info.body.stats.overflowed, 1);
  });

  it('refuses and dead-letters the newcomer (reject-publish-dlx)', async () => {
    await call(h.app, 'PUT', '/queues/q', {
      maxLength: 1,
      overflow: 'reject-publish-dlx',
      deadLetter: 'q.dlq',
    });
    assert.equal((await publish('q', 'a')).status, 201);
    const refused = await publish('q', 'b');
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.code, 'QUEUE_FULL');

    // A batch is refused whole, and each of its messages dead-lettered.
    const batch = await call(h.app, 'POST', '/queues/q/messages/batch', {
      messages: [{ body: 'c' }, { body: 'd' }],
    });
    assert.equal(batch.status, 429);

    const dead = await call(h.app, 'GET', '/queues/q.dlq/messages?limit=10');
    assert.deepEqual(dead.body.messages.map((m: { body: string }) => m.body), ['b', 'c', 'd']);
    assert.equal(dead.body.messages[0].headers['x-usher-death-reason'], 'overflow');
    assert.equal(dead.body.messages[0].headers['x-usher-death-queue'], 'q');
    const info = await call(h.app, 'GET', '/queues/q');
    assert.equal(info.body.stats.total, 1);
    assert.equal(info.body.stats.refused, 3);
    assert.equal(info.body.stats.deadLettered, 3);
    assert.equal(info.body.stats.dropped, 0);
  });

  it('only refuses under reject-publish-dlx without a dead-letter queue', async () => {
    await call(h.app, 'PUT', '/queues/q', { maxLength: 1, overflow: 'reject-publish-dlx' });
    await publish('q', 'a');
    assert.equal((await publish('q', 'b')).status, 429);
    const info = await call(h.app, 'GET', '/queues/q');
    assert.equal(info.body.stats.total, 1);
    assert.equal(info.body.stats.refused, 1);
    assert.equal(info.body.stats.dropped, 0, 'refused, never accepted: not dropped');
    assert.equal(info.body.stats.deadLettered, 0);
  });

  it('displaces the lowest priority for a higher newcomer (reject-lowest-priority)', async () => {
    await call(h.app, 'PUT', '/queues/q', {
      maxLength: 2,
      overflow: 'reject-lowest-priority',
      deadLetter: 'q.dlq',
    });
    await publish('q', 'low', 1);
    await publish('q', 'mid', 5);
    assert.equal((await publish('q', 'also-low', 1)).status, 429);
    assert.equal((await publish('q', 'high', 9)).status, 201);

    const received = await call(h.app, 'POST', '/queues/q/receive', { max: 10 });
    assert.deepEqual(received.body.messages.map((m: { body: string }) => m.body), ['high', 'mid']);
    const dead = await call(h.app, 'GET', '/queues/q.dlq/messages?limit=10');
    assert.deepEqual(dead.body.messages.map((m: { body: string }) => m.body), ['low']);
  });
});

describe('queue limits across a restart', () => {
  it('keeps the publishes reject-publish-dlx dead-lettered', async () => {
    await call(h.app, 'PUT', '/queues/q', {
      maxLength: 1,
      overflow: 'reject-publish-dlx',
      deadLetter: 'q.dlq',
    });
    await publish('q', 'a');
    assert.equal((await publish('q', 'b')).status, 429);
    const dir = h.dir;
    await h.broker.close();

    const broker = await openBroker(dir);
    try {
      assert.equal(broker.getQueue('q').settings.overflow, 'reject-publish-dlx');
      assert.equal(broker.getQueue('q').stats.total, 1);
      const [dead] = broker.peek('q.dlq', { limit: 10, offset: 0 });
      assert.equal(dead.body.toString(), 'b');
      assert.equal(dead.headers['x-usher-death-reason'], 'overflow');
    } finally {
      await broker.close();
    }
  });

  it('keeps the settings and the displaced messages where they went', async () => {
    await call(h.app, 'PUT', '/queues/q', {
      maxLength: 1,
      overflow: 'drop-oldest',
      deadLetter: 'q.dlq',
    });
    await publish('q', 'a');
    await publish('q', 'b');
    const dir = h.dir;
    await h.broker.close();

    const broker = await openBroker(dir);
    try {
      const info = broker.getQueue('q');
      assert.equal(info.settings.maxLength, 1);
      assert.equal(info.settings.overflow, 'drop-oldest');
      assert.equal(info.stats.total, 1);
      assert.equal(broker.getQueue('q.dlq').stats.total, 1);

      // Still enforced after the restart.
      await broker.publish('q', [{ body: Buffer.from('c') }]);
      assert.equal(broker.getQueue('q').stats.total, 1);
      assert.equal(broker.getQueue('q.dlq').stats.total, 2);
    } finally {
      await broker.close();
    }
  });
});
