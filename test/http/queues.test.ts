// Queue routes over a real broker: declare, list, inspect, purge, delete,
// redrive, and the health check.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import { DEFAULT_SETTINGS } from '../../src/engine/types.js';
import { heldDisk, until } from '../helpers.js';
import { call, startHttp, type Harness } from './harness.js';

let h: Harness;

beforeEach(async () => {
  h = await startHttp();
});

afterEach(async () => {
  await h.close();
});

describe('PUT /queues/{name}', () => {
  it('creates a queue with default settings when given no body', async () => {
    const answer = await call(h.app, 'PUT', '/queues/orders');

    assert.equal(answer.status, 201);
    assert.equal(answer.body.name, 'orders');
    assert.deepEqual(answer.body.settings, DEFAULT_SETTINGS);
    assert.equal(answer.body.stats.total, 0);
    assert.deepEqual(answer.body.deadLetterSources, []);
  });

  it('answers 200 when the queue exists with the same settings', async () => {
    const settings = { fifo: true, backoff: { initialMs: 50 } };
    const first = await call(h.app, 'PUT', '/queues/orders', settings);
    const second = await call(h.app, 'PUT', '/queues/orders', settings);

    assert.equal(first.status, 201);
    assert.equal(second.status, 200);
    assert.equal(second.body.settings.fifo, true);
    assert.equal(second.body.settings.backoff.initialMs, 50);
    assert.equal(
      second.body.settings.backoff.maxMs,
      DEFAULT_SETTINGS.backoff.maxMs,
    );
  });

  it('changes only the settings named on an existing queue', async () => {
    await call(h.app, 'PUT', '/queues/orders', {
      maxAttempts: 3,
      visibilityTimeoutMs: 500,
    });
    const answer = await call(h.app, 'PUT', '/queues/orders', {
      maxAttempts: 4,
    });

    assert.equal(answer.status, 200);
    assert.equal(answer.body.settings.maxAttempts, 4);
    assert.equal(answer.body.settings.visibilityTimeoutMs, 500);
  });

  it('answers 409 QUEUE_EXISTS when asked to change fifo', async () => {
    await call(h.app, 'PUT', '/queues/orders', { maxAttempts: 3 });
    const answer = await call(h.app, 'PUT', '/queues/orders', { fifo: true });

    assert.equal(answer.status, 409);
    assert.equal(answer.body.error.code, 'QUEUE_EXISTS');
    assert.equal(answer.body.error.field, 'queue');
    assert.match(answer.body.error.message, /fifo: false now, true asked/);
  });

  it('creates the dead-letter queue and lists its source', async () => {
    await call(h.app, 'PUT', '/queues/orders', { deadLetter: 'orders.dlq' });
    const dlq = await call(h.app, 'GET', '/queues/orders.dlq');

    assert.equal(dlq.status, 200);
    assert.deepEqual(dlq.body.deadLetterSources, ['orders']);
  });

  it('names the queue-name problem the broker found', async () => {
    const answer = await call(h.app, 'PUT', '/queues/%01bad');

    assert.equal(answer.status, 400);
    assert.equal(answer.body.error.code, 'INVALID_ARGUMENT');
    assert.equal(answer.body.error.field, 'name');
    assert.match(answer.body.error.message, /"\\u0001bad"/);
  });
});

describe('GET /queues and GET /queues/{name}', () => {
  it('lists every queue by name with live stats', async () => {
    await call(h.app, 'PUT', '/queues/b');
    await call(h.app, 'PUT', '/queues/a');
    await call(h.app, 'POST', '/queues/a/messages', { body: 'hello' });

    const list = await call(h.app, 'GET', '/queues');
    const one = await call(h.app, 'GET', '/queues/a');

    assert.equal(list.status, 200);
    assert.deepEqual(
      list.body.queues.map((q: { name: string }) => q.name),
      ['a', 'b'],
    );
    assert.equal(one.status, 200);
    assert.equal(one.body.stats.ready, 1);
    assert.equal(one.body.stats.total, 1);
    assert.equal(one.body.stats.bytes, 5);
    assert.equal(one.body.stats.published, 1);
  });

  it('answers 404 QUEUE_NOT_FOUND for an unknown queue', async () => {
    const answer = await call(h.app, 'GET', '/queues/ghost');

    assert.equal(answer.status, 404);
    assert.deepEqual(answer.body, {
      error: {
        code: 'QUEUE_NOT_FOUND',
        message: 'queue "ghost" does not exist',
        field: 'queue',
      },
    });
  });
});

describe('DELETE /queues/{name} and POST /queues/{name}/purge', () => {
  it('purges the messages and keeps the queue', async () => {
    await call(h.app, 'PUT', '/queues/orders');
    await call(h.app, 'POST', '/queues/orders/messages/batch', {
      messages: [{ body: 1 }, { body: 2 }, { body: 3 }],
    });

    const purged = await call(h.app, 'POST', '/queues/orders/purge');
    const after = await call(h.app, 'GET', '/queues/orders');

    assert.equal(purged.status, 200);
    assert.deepEqual(purged.body, { purged: 3 });
    assert.equal(after.body.stats.total, 0);
  });

  it('deletes with 204 and no body, then the queue is gone', async () => {
    await call(h.app, 'PUT', '/queues/orders');

    const deleted = await call(h.app, 'DELETE', '/queues/orders');
    const after = await call(h.app, 'GET', '/queues/orders');
    const again = await call(h.app, 'DELETE', '/queues/orders');

    assert.equal(deleted.status, 204);
    assert.equal(deleted.raw.length, 0);
    assert.equal(after.status, 404);
    assert.equal(again.status, 404);
    assert.equal(again.body.error.code, 'QUEUE_NOT_FOUND');
  });
});

describe('POST /queues/{name}/redrive', () => {
  it('moves dead letters back to the queue they died in', async () => {
    await call(h.app, 'PUT', '/queues/orders', { deadLetter: 'dlq' });
    await call(h.app, 'POST', '/queues/orders/messages', { body: 'x' });
    const received = await call(h.app, 'POST', '/queues/orders/receive', {});
    const { receipt } = received.body.messages[0];
    const nacked = await call(h.app, 'POST', '/queues/orders/nack', {
      receipt,
      requeue: false,
      reason: 'bad input',
    });
    assert.deepEqual(nacked.body, { ok: true, outcome: 'dead-lettered', reason: 'rejected' });

    const dead = await call(h.app, 'GET', '/queues/dlq/messages');
    const redriven = await call(h.app, 'POST', '/queues/dlq/redrive');
    const orders = await call(h.app, 'GET', '/queues/orders');
    const dlq = await call(h.app, 'GET', '/queues/dlq');

    assert.equal(dead.body.messages.length, 1);
    assert.equal(dead.body.messages[0].body, 'x');
    const deathQueue = dead.body.messages[0].headers['x-usher-death-queue'];
    assert.equal(deathQueue, 'orders');
    assert.deepEqual(redriven.body, { moved: 1 });
    assert.equal(orders.body.stats.ready, 1);
    assert.equal(dlq.body.stats.total, 0);
  });

  it('moves at most "max" messages to the queue named by "to"', async () => {
    await call(h.app, 'PUT', '/queues/parked');
    await call(h.app, 'PUT', '/queues/retry');
    await call(h.app, 'POST', '/queues/parked/messages/batch', {
      messages: [{ body: 'a' }, { body: 'b' }, { body: 'c' }],
    });

    const answer = await call(h.app, 'POST', '/queues/parked/redrive', {
      to: 'retry',
      max: 2,
      anyQueue: true,
    });
    const retry = await call(h.app, 'GET', '/queues/retry');

    assert.deepEqual(answer.body, { moved: 2 });
    assert.equal(retry.body.stats.ready, 2);
  });

  it('refuses a queue that no queue dead-letters into, unless "anyQueue"', async () => {
    await call(h.app, 'PUT', '/queues/live', { deadLetter: 'live.dlq' });
    await call(h.app, 'PUT', '/queues/elsewhere');
    await call(h.app, 'POST', '/queues/live/messages', { body: 'work' });

    const withoutTo = await call(h.app, 'POST', '/queues/live/redrive');
    const withTo = await call(h.app, 'POST', '/queues/live/redrive', { to: 'elsewhere' });

    for (const answer of [withoutTo, withTo]) {
      assert.equal(answer.status, 409);
      assert.deepEqual(answer.body.error, {
        code: 'NOT_DEAD_LETTER_QUEUE',
        field: 'queue',
        message: 'queue "live" is not a dead-letter queue: no queue dead-letters ' +
          'into it, so its messages may be live work; its dead letters are in ' +
          '"live.dlq". Send "anyQueue": true to move its messages anyway',
      });
    }
    assert.equal((await call(h.app, 'GET', '/queues/live')).body.stats.ready, 1);

    // Its dead-letter queue is one, empty or not.
    const dlq = await call(h.app, 'POST', '/queues/live.dlq/redrive');
    assert.deepEqual(dlq.body, { moved: 0 });
    const forced = await call(h.app, 'POST', '/queues/live/redrive', {
      to: 'elsewhere',
      anyQueue: true,
    });
    assert.deepEqual(forced.body, { moved: 1 });
    assert.equal((await call(h.app, 'GET', '/queues/elsewhere')).body.stats.ready, 1);
  });

  it('answers 404 QUEUE_NOT_FOUND for a "to" queue being deleted, and moves nothing', async () => {
    await h.close();
    const disk = heldDisk();
    h = await startHttp({ broker: { storeIo: disk.io, sync: true } });
    await call(h.app, 'PUT', '/queues/target');
    await call(h.app, 'PUT', '/queues/parked');
    await call(h.app, 'POST', '/queues/parked/messages', { body: 'waits' });

    disk.hold();
    const deleting = call(h.app, 'DELETE', '/queues/target');
    await until('the delete to wait for its sync', () => disk.syncsWaiting === 1);
    let answered = false;
    const redriving = call(h.app, 'POST', '/queues/parked/redrive', {
      to: 'target',
      anyQueue: true,
    }).finally(() => (answered = true));
    await until('the redrive to answer or be written', () => answered || disk.syncsWaiting > 1);
    const syncsWaiting = disk.syncsWaiting;
    disk.release();

    assert.equal(syncsWaiting, 1, 'nothing written for it');
    const answer = await redriving;
    assert.equal(answer.status, 404);
    assert.deepEqual(answer.body, {
      error: { code: 'QUEUE_NOT_FOUND', message: 'queue "target" does not exist', field: 'to' },
    });
    assert.equal((await deleting).status, 204);
    assert.equal((await call(h.app, 'GET', '/queues/parked')).body.stats.ready, 1);
  });
});

describe('GET /healthz', () => {
  it('reports status, queue count and store figures', async () => {
    await call(h.app, 'PUT', '/queues/orders');

    const answer = await call(h.app, 'GET', '/healthz');

    assert.equal(answer.status, 200);
    assert.equal(answer.body.status, 'ok');
    assert.equal(answer.body.queues, 1);
    assert.equal(typeof answer.body.uptimeMs, 'number');
    assert.equal(answer.body.store.segments, 1);
  });
});

describe('queue names beyond [A-Za-z0-9_.:-] (RabbitMQ\'s rule)', () => {
  const names = ['orders eu/2026?#%', 'billets-été', '-leading', 'x'.repeat(255), 'ü'.repeat(127)];

  for (const name of names) {
    it(`creates, publishes to, reads and deletes ${JSON.stringify(name.slice(0, 20))}`, async () => {
      const path = `/queues/${encodeURIComponent(name)}`;
      assert.equal((await call(h.app, 'PUT', path)).status, 201);
      assert.equal((await call(h.app, 'POST', `${path}/messages`, { body: 'hi' })).status, 201);

      const shown = await call(h.app, 'GET', path);
      assert.equal(shown.body.name, name);
      assert.equal(shown.body.stats.ready, 1);
      const listed = await call(h.app, 'GET', '/queues');
      assert.ok(listed.body.queues.some((queue: { name: string }) => queue.name === name));
      assert.equal((await call(h.app, 'DELETE', path)).status, 204);
    });
  }

  // ".." is refused too (test/broker): over HTTP it never reaches a route.
  it('refuses control characters and more than 255 bytes with 400', async () => {
    for (const name of ['a\u0001b', 'ü'.repeat(128)]) {
      const answer = await call(h.app, 'PUT', `/queues/${encodeURIComponent(name)}`);
      assert.equal(answer.status, 400, name);
      assert.equal(answer.body.error.code, 'INVALID_ARGUMENT');
    }
  });
});
