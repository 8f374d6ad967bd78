// The client against a real `usher serve`: every endpoint once, bodies of
// each kind round-tripped, and errors carrying the broker's code and field.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  UsherClientError,
  connect,
  type UsherClient,
} from '../../src/client/index.js';
import { closedPort, startUsher, type UsherServer } from './usher-process.js';

let server: UsherServer;
let usher: UsherClient;

before(async () => {
  server = await startUsher();
  usher = connect(server.url);
});

after(async () => {
  await server?.stop();
});

/** Rejects with an UsherClientError and answers it for more checks. */
async function refusal(call: Promise<unknown>): Promise<UsherClientError> {
  const err = await call.then(
    () => assert.fail('expected the call to be refused'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof UsherClientError, `not an UsherClientError: ${err}`);
  return err;
}

describe('bodies', () => {
  it('round-trips JSON, text and bytes', async () => {
    await usher.createQueue('bodies');
    const bytes = Buffer.from([0x00, 0x01, 0xff, 0xfe]);
    // A view into a larger buffer: only its own bytes may be sent.
    const view = new Uint8Array([9, 9, 0x80, 0x81, 9]).subarray(2, 4);

    await usher.publish('bodies', { order: 7, items: ['a', 'b'] });
    await usher.publish('bodies', 'plain text');
    await usher.publish('bodies', bytes);
    await usher.publish('bodies', view);
    await usher.publish('bodies', 42);

    const messages = await usher.receive('bodies', { max: 10, waitMs: 1000 });
    assert.equal(messages.length, 5);
    assert.deepEqual(messages.map((m) => m.body), [
      { order: 7, items: ['a', 'b'] },
      'plain text',
      bytes,
      Buffer.from([0x80, 0x81]),
      42,
    ]);
    assert.equal(messages[0].headers['content-type'], 'application/json');
    assert.ok(Buffer.isBuffer(messages[2].body));

    const { acked, results } = await usher.ack(
      'bodies',
      messages.map((m) => m.receipt),
    );
    assert.equal(acked, 5);
    assert.deepEqual(results, [true, true, true, true, true]);
    const info = await usher.getQueue('bodies');
    assert.equal(info.stats.total, 0);
    assert.equal(info.stats.acked, 5);
  });

  it('refuses a body that cannot be sent, before sending', async () => {
    const err = await refusal(usher.publish('bodies', undefined as never));
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.equal(err.status, 0);
    assert.equal(err.field, 'body');
  });

  it('refuses a misspelt publish option, as plain JavaScript would pass it', async () => {
    const err = await refusal(usher.publish('bodies', 'x', { priorty: 5 } as never));
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.equal(err.field, 'options.priorty');
    assert.match(err.message, /options\.priorty is not a known publish option/);
    const inBatch = await refusal(usher.publishBatch('bodies', [
      { body: 'a' }, { body: 'b', ttl: 5 } as never,
    ]));
    assert.equal(inBatch.field, 'messages.1.ttl');
  });
});

describe('publishing and receiving', () => {
  it('publishes a batch with options and delivers by priority', async () => {
    await usher.createQueue('batch');
    const results = await usher.publishBatch('batch', [
      { body: 'low', id: 'm-low' },
      { body: 'high', id: 'm-high', priority: 9, headers: { tenant: 'acme' } },
      { body: 'grouped', group: 'g1', priority: 5 },
    ]);
    assert.equal(results.length, 3);
    assert.deepEqual(results.slice(0, 2), [
      { id: 'm-low', duplicate: false },
      { id: 'm-high', duplicate: false },
    ]);

    const again = await usher.publish('batch', 'low again', { id: 'm-low' });
    assert.deepEqual(again, { id: 'm-low', duplicate: true });

    const messages = await usher.receive('batch', { max: 3 });
    assert.deepEqual(messages.map((m) => m.body), ['high', 'grouped', 'low']);
    const [high, grouped] = messages;
    assert.equal(high.id, 'm-high');
    assert.equal(high.priority, 9);
    assert.equal(high.headers.tenant, 'acme');
    assert.equal(high.attempt, 1);
    assert.equal(high.redelivered, false);
    assert.equal(high.queue, 'batch');
    assert.equal(grouped.group, 'g1');
    assert.ok(high.leaseDeadline > Date.now());
  });

  it('nacks with a delay, extends a lease and redelivers', async () => {
    await usher.createQueue('retry');
    await usher.publish('retry', 'again');

    const [first] = await usher.receive('retry', { visibilityTimeoutMs: 5000 });
    const deadline = await usher.extend('retry', first.receipt, 60_000);
    assert.ok(deadline >= Date.now() + 55_000, `deadline ${deadline}`);

    const nackedAt = Date.now();
    await usher.nack('retry', first.receipt, { delayMs: 100, reason: 'not yet' });
    // The delay shows in when the message is due, not in its state: on a
    // loaded machine the 100 ms may be over before the next call is read.
    const [waiting] = await usher.peek('retry', { limit: 1 });
    assert.ok(waiting.availableAt >= nackedAt + 100, `due ${waiting.availableAt - nackedAt} ms`);
    assert.equal(waiting.failures, 1);

    const [second] = await usher.receive('retry', { waitMs: 3000 });
    assert.equal(second.id, first.id);
    assert.equal(second.attempt, 2);
    assert.equal(second.redelivered, true);
  });

  it('peeks without leasing and redrives a dead letter', async () => {
    await usher.createQueue('work', { deadLetter: 'work.dlq' });
    await usher.publish('work', { job: 1 });
    const [message] = await usher.receive('work');
    await usher.nack('work', message.receipt, {
      requeue: false,
      reason: 'bad input',
    });

    const dead = await usher.peek('work.dlq', { limit: 10 });
    assert.equal(dead.length, 1);
    assert.deepEqual(dead[0].body, { job: 1 });
    assert.equal(dead[0].id, message.id);
    assert.equal(dead[0].headers['x-usher-death-reason'], 'rejected');
    const deaths = JSON.parse(dead[0].headers['x-usher-deaths']);
    assert.equal(deaths.at(-1).error, 'bad input');
    assert.equal((await usher.getQueue('work.dlq')).stats.inFlight, 0);

    assert.equal(await usher.redrive('work.dlq'), 1);
    const info = await usher.getQueue('work');
    assert.equal(info.stats.ready, 1);
  });

  it('redrives only the dead letters its filters name, and live work only when asked', async () => {
    await usher.createQueue('sorted', { deadLetter: 'sorted.dlq' });
    for (const job of [1, 2]) await usher.publish('sorted', { job });
    for (const message of await usher.receive('sorted', { max: 2 })) {
      await usher.nack('sorted', message.receipt, { requeue: false });
    }
    const [first] = await usher.peek('sorted.dlq', { limit: 1 });

    assert.equal(await usher.redrive('sorted.dlq', { ids: [first.id], reason: 'rejected' }), 1);
    assert.equal(await usher.redrive('sorted.dlq', { reason: 'expired' }), 0);
    assert.equal((await usher.getQueue('sorted.dlq')).stats.ready, 1);

    await usher.createQueue('elsewhere');
    assert.equal((await refusal(usher.redrive('sorted', { to: 'elsewhere' }))).code,
      'NOT_DEAD_LETTER_QUEUE');
    assert.equal(await usher.redrive('sorted', { to: 'elsewhere', anyQueue: true }), 1);
  });
});

describe('queues', () => {
  it('creates, lists, purges and deletes', async () => {
    const first = await usher.createQueue('admin', { maxAttempts: 3, fifo: true });
    assert.equal(first.created, true);
    assert.equal(first.queue.settings.maxAttempts, 3);
    assert.equal(first.queue.settings.fifo, true);
    const second = await usher.createQueue('admin', { maxAttempts: 3, fifo: true });
    assert.equal(second.created, false);

    const names = (await usher.listQueues()).map((q) => q.name);
    assert.ok(names.includes('admin'), names.join());

    await usher.publishBatch('admin', [{ body: 1 }, { body: 2 }]);
    assert.equal(await usher.purgeQueue('admin'), 2);
    await usher.deleteQueue('admin');
    const err = await refusal(usher.getQueue('admin'));
    assert.equal(err.code, 'QUEUE_NOT_FOUND');
  });

  it('reports health', async () => {
    const health = await usher.health();
    assert.equal(health.status, 'ok');
  });
});

describe('errors', () => {
  it("carry the broker's status, code, field and message", async () => {
    const missing = await refusal(usher.publish('nowhere', 'x'));
    assert.equal(missing.status, 404);
    assert.equal(missing.code, 'QUEUE_NOT_FOUND');
    assert.equal(missing.field, 'queue');
    assert.equal(missing.message, 'queue "nowhere" does not exist');

    await usher.createQueue('strict', { maxAttempts: 2 });
    const exists = await refusal(usher.createQueue('strict', { fifo: true }));
    assert.equal(exists.status, 409);
    assert.equal(exists.code, 'QUEUE_EXISTS');
  });

  it('name the offending message inside a batch', async () => {
    await usher.createQueue('fields');
    const err = await refusal(
      usher.publishBatch('fields', [{ body: 'ok' }, { body: 'bad', priority: 12 }]),
    );
    assert.equal(err.status, 400);
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.equal(err.field, 'messages.1.priority');
  });

  it('refuse an unknown receipt', async () => {
    await usher.createQueue('receipts');
    const err = await refusal(usher.ack('receipts', 'no-such-receipt'));
    assert.equal(err.code, 'RECEIPT_NOT_FOUND');
    assert.equal(err.status, 404);
    assert.equal(err.field, 'receipt');
  });

  it('keep the cause of a network failure', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const err = await refusal(connect(url).listQueues());
    assert.equal(err.code, 'CONNECTION_FAILED');
    assert.equal(err.status, 0);
    assert.equal(err.message, `cannot reach Usher at ${url}: connection refused`);
    assert.ok(err.cause instanceof Error);
  });

  it('refuse a URL that is not http', () => {
    assert.throws(() => connect('ftp://127.0.0.1'), {
      name: 'UsherClientError',
      code: 'INVALID_ARGUMENT',
      field: 'url',
    });
  });

  it('abort a long poll with ABORTED', async () => {
    await usher.createQueue('idle');
    const controller = new AbortController();
    const polling = usher.receive('idle', {
      waitMs: 10_000,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 50);
    const err = await refusal(polling);
    assert.equal(err.code, 'ABORTED');
  });
});
