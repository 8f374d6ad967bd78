// The broker over a real log in a temp folder: what users see through the
// API, and what survives a close and reopen.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import { ManualClock, openBroker, tempDir, text } from '../helpers.js';
import { FaultyIo } from '../storage/helpers.js';

let dir: ReturnType<typeof tempDir>;
let clock: ManualClock;
let broker: Broker;

beforeEach(async () => {
  dir = tempDir();
  clock = new ManualClock();
  broker = await openBroker(dir.path, { clock: clock.read, random: () => 0 });
});

afterEach(async () => {
  await broker.close();
  dir.remove();
});

async function reopen(): Promise<void> {
  await broker.close();
  broker = await openBroker(dir.path, { clock: clock.read, random: () => 0 });
}

const bodies = (messages: { body: Buffer }[]) => messages.map((m) => m.body.toString());

describe('publish, receive, ack', () => {
  it('round-trips a message with its fields', async () => {
    await broker.createQueue('orders', {});
    const [result] = await broker.publish('orders', [
      { id: 'o-1', body: text('{"a":1}'), headers: { k: 'v' }, priority: 3, group: 'g' },
    ]);
    assert.deepEqual(result, { id: 'o-1', duplicate: false });

    const [message] = await broker.receive('orders', { max: 10, waitMs: 0 });
    assert.equal(message.id, 'o-1');
    assert.equal(message.body.toString(), '{"a":1}');
    assert.deepEqual(message.headers, { k: 'v' });
    assert.equal(message.priority, 3);
    assert.equal(message.group, 'g');
    assert.equal(message.attempt, 1);
    assert.equal(message.redelivered, false);
    assert.equal(message.leaseDeadline, clock.now + 30_000);

    assert.deepEqual(await broker.ack('orders', [message.receipt, 'nope']), [true, false]);
    const { stats } = broker.getQueue('orders');
    assert.deepEqual(
      [stats.ready, stats.inFlight, stats.delayed, stats.published, stats.acked],
      [0, 0, 0, 1, 1],
    );
  });

  it('refuses bad input with the field named', async () => {
    await broker.createQueue('q', {});
    await assert.rejects(broker.publish('q', [{ body: text('x'), priority: 10 }]),
      { code: 'INVALID_ARGUMENT', field: 'priority' });
    await assert.rejects(
      broker.publish('q', [{ body: text('x') }, { body: text('y'), delayMs: -1 }]),
      { code: 'INVALID_ARGUMENT', field: 'messages.1.delayMs' });
    await assert.rejects(broker.publish('nope', [{ body: text('x') }]),
      { code: 'QUEUE_NOT_FOUND', status: 404 });
    await assert.rejects(broker.createQueue('bad\nname', {}), { code: 'INVALID_ARGUMENT', field: 'name' });
    await assert.rejects(broker.createQueue('x'.repeat(256), {}), { code: 'INVALID_ARGUMENT', field: 'name' });
    await assert.rejects(broker.createQueue('..', {}), { code: 'INVALID_ARGUMENT', field: 'name' });
    await assert.rejects(broker.createQueue('q2', { maxAttempts: -1 }),
      { code: 'INVALID_ARGUMENT', field: 'maxAttempts' });
    await assert.rejects(broker.nack('q', 'nope', {}), { code: 'RECEIPT_NOT_FOUND' });
    assert.equal(broker.getQueue('q').stats.total, 0, 'nothing half-published');
  });

  it('declares idempotently, changes only the settings named', async () => {
    const first = await broker.createQueue('q', { maxAttempts: 3, visibilityTimeoutMs: 500 });
    assert.deepEqual([first.created, first.updated], [true, false]);
    const same = await broker.createQueue('q', {});
    assert.deepEqual([same.created, same.updated], [false, false]);
    assert.equal(same.queue.settings.maxAttempts, 3);

    const changed = await broker.createQueue('q', { maxAttempts: 4 });
    assert.deepEqual([changed.created, changed.updated], [false, true]);
    assert.equal(changed.queue.settings.visibilityTimeoutMs, 500, 'kept');
    await assert.rejects(broker.createQueue('q', { fifo: true }), { code: 'QUEUE_EXISTS', status: 409 });

    await reopen();
    assert.equal(broker.getQueue('q').settings.maxAttempts, 4);
    assert.equal(broker.getQueue('q').settings.visibilityTimeoutMs, 500);
  });

  it('lets an auto-created dead-letter queue be declared again', async () => {
    await broker.createQueue('orders', { deadLetter: 'orders.dlq' });
    const again = await broker.createQueue('orders.dlq', {});
    assert.equal(again.created, false);
    assert.equal(again.queue.settings.maxAttempts, 0, 'keeps dead letters forever');
  });

  it('stores a repeated id once within the window, also after a restart', async () => {
    await broker.createQueue('q', { dedupWindowMs: 60_000 });
    await broker.publish('q', [{ id: 'same', body: text('1') }]);
    const [again] = await broker.publish('q', [{ id: 'same', body: text('2') }]);
    assert.equal(again.duplicate, true);

    await reopen();
    assert.equal((await broker.publish('q', [{ id: 'same', body: text('3') }]))[0].duplicate, true);
    clock.advance(60_001);
    assert.equal((await broker.publish('q', [{ id: 'same', body: text('4') }]))[0].duplicate, false);
    assert.equal(broker.getQueue('q').stats.total, 2);
  });
});

describe('refusals leave no trace', () => {
  it('a batch refused for one bad message can be sent again whole', async () => {
    await broker.createQueue('q', {});
    const tooMany = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`h${i}`, 'v']));
    await assert.rejects(broker.publish('q', [
      { id: 'a', body: text('1') },
      { id: 'b', body: text('2'), headers: tooMany },
    ]), { code: 'INVALID_ARGUMENT', field: 'messages.1.headers' });

    const results = await broker.publish('q', [{ id: 'a', body: text('1') }]);
    assert.deepEqual(results, [{ id: 'a', duplicate: false }]);
    assert.equal(broker.getQueue('q').stats.total, 1);
  });

  it('a full disk refuses the publish, reports degraded, then recovers', async () => {
    const io = new FaultyIo();
    await broker.close();
    broker = await openBroker(dir.path, { clock: clock.read, storeIo: io });
    await broker.createQueue('q', {});

    io.failNext('writev', 'ENOSPC', true);
    await assert.rejects(broker.publish('q', [{ id: 'lost', body: text('x') }]),
      { code: 'STORE_UNAVAILABLE', status: 503 });
    assert.equal(broker.health().status, 'degraded');
    assert.equal(broker.getQueue('q').stats.total, 0, 'nothing unconfirmed is delivered');

    const [received] = await broker.receive('q', { max: 1, waitMs: 0 });
    assert.equal(received, undefined);
    const [again] = await broker.publish('q', [{ id: 'lost', body: text('x') }]);
    assert.equal(again.duplicate, false, 'the failed id was forgotten');
    // An ack the disk refuses is not an ack: the message is ready again.
    const [message] = await broker.receive('q', { max: 1, waitMs: 0 });
    io.failNext('writev', 'EIO');
    await assert.rejects(broker.ack('q', [message.receipt]), { code: 'STORE_UNAVAILABLE' });
    const [redelivered] = await broker.receive('q', { max: 1, waitMs: 0 });
    assert.equal(redelivered.id, 'lost');
    await broker.ack('q', [redelivered.receipt]);
    await broker.publish('q', [{ id: 'kept', body: text('y') }]);

    clock.advance(30_000);
    assert.equal(broker.health().status, 'ok');
    await reopen();
    assert.deepEqual(broker.peek('q', { limit: 10, offset: 0 }).map((m) => m.id), ['kept']);
  });
});

describe('one broker per data folder', () => {
  it('refuses a second broker on the same folder, and takes over a stale lock', async () => {
    await broker.createQueue('q', {});
    await assert.rejects(openBroker(dir.path), { code: 'DATA_DIR_IN_USE' });
    await broker.publish('q', [{ body: text('still safe') }]);

    await broker.close();
    writeFileSync(join(dir.path, 'usher.lock'), '999999999\n');
    broker = await openBroker(dir.path, { clock: clock.read });
    assert.equal(broker.getQueue('q').stats.total, 1);
  });
});

describe('disk floor (C17)', () => {
  it('refuses publishes below the floor while acks, nacks and moves go on', async () => {
    let free = 500;
    await broker.close();
    broker = await openBroker(dir.path, {
      clock: clock.read,
      diskFloorBytes: 100,
      freeDiskBytes: async () => free,
    });
    await broker.createQueue('q', { deadLetter: 'q.dlq', backoff: { initialMs: 0, jitter: 0 } });
    await broker.publish('q', ['a', 'b', 'c'].map((id) => ({ id, body: text(id) })));

    free = 50;
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await assert.rejects(broker.publish('q', [{ body: text('x') }]), { code: 'DISK_FULL', status: 507 });
    assert.equal(broker.health().status, 'degraded');

    const [a, b, c] = await broker.receive('q', { max: 3, waitMs: 0 });
    assert.deepEqual(await broker.ack('q', [a.receipt]), [true]);
    await broker.nack('q', b.receipt, {});
    await broker.nack('q', c.receipt, { requeue: false });
    assert.deepEqual(await broker.redrive('q.dlq', {}), { moved: 1 });
    assert.equal(broker.getQueue('q').stats.total, 2, 'b retried and c redriven, none dropped');

    free = 500;
    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.equal((await broker.publish('q', [{ body: text('y') }])).length, 1);
    assert.equal(broker.health().status, 'ok');
  });
});

describe('long polling', () => {
  it('answers a waiting receive as soon as a message is published', async () => {
    await broker.createQueue('q', {});
    const waiting = broker.receive('q', { max: 5, waitMs: 5000 });
    await broker.publish('q', [{ body: text('hello') }]);

    assert.deepEqual(bodies(await waiting), ['hello']);
  });

  it('answers empty when aborted', async () => {
    await broker.createQueue('q', {});
    const controller = new AbortController();
    const waiting = broker.receive('q', { max: 1, waitMs: 5000, signal: controller.signal });
    controller.abort();

    assert.deepEqual(await waiting, []);
  });
});

describe('retries and dead letters', () => {
  it('keeps attempts across a restart and dead-letters at the limit (C3)', async () => {
    await broker.createQueue('work', { maxAttempts: 3, deadLetter: 'work.dlq',
      backoff: { initialMs: 0, jitter: 0 } });
    await broker.publish('work', [{ id: 'job', body: text('x') }]);

    for (let i = 0; i < 2; i++) {
      const [message] = await broker.receive('work', { max: 1, waitMs: 0 });
      await broker.nack('work', message.receipt, { reason: `boom ${i + 1}` });
    }
    await reopen();

    const [third] = await broker.receive('work', { max: 1, waitMs: 0 });
    assert.equal(third.attempt, 3);
    assert.equal(third.redelivered, true);
    assert.equal(third.headers['x-usher-first-error'], 'boom 1');
    assert.equal(third.headers['x-usher-last-error'], 'boom 2');

    await broker.nack('work', third.receipt, { reason: 'boom 3' });
    const [dead] = broker.peek('work.dlq', { limit: 10, offset: 0 });
    assert.equal(dead.id, 'job');
    assert.equal(dead.headers['x-usher-death-reason'], 'max-attempts');
    assert.equal(dead.headers['x-usher-death-queue'], 'work');
    assert.equal(dead.headers['x-usher-death-attempts'], '3');
    assert.equal(dead.headers['x-usher-first-error'], 'boom 1');
    assert.equal(broker.getQueue('work').stats.total, 0);
  });

  it('dead-letters a message whole and keeps its first death (C5)', async () => {
    await broker.createQueue('src', { deadLetter: 'src.dlq' });
    await broker.publish('src', [
      { id: 'm', body: text('payload'), headers: { trace: 't-1' }, priority: 5, ttlMs: 1000 },
    ]);
    clock.advance(200);
    const [message] = await broker.receive('src', { max: 1, waitMs: 0 });
    await broker.nack('src', message.receipt, { requeue: false, reason: 'bad' });
    clock.advance(2000);
    broker.runDue();

    let [dead] = broker.peek('src.dlq', { limit: 1, offset: 0 });
    assert.equal(dead.body.toString(), 'payload');
    assert.equal(dead.priority, 5);
    assert.equal(dead.headers.trace, 't-1');
    assert.equal(dead.headers['x-usher-death-reason'], 'rejected');
    assert.equal(dead.expiresAt, null, 'the TTL no longer expires it in the DLQ');
    const [death] = JSON.parse(dead.headers['x-usher-deaths']);
    assert.equal(death.expiresAt, new Date(clock.now - 2200 + 1000).toISOString());
    assert.equal(death.error, 'bad');

    // Redrive it back, let it die again: two records, the first kept.
    assert.deepEqual(await broker.redrive('src.dlq', {}), { moved: 1 });
    const [again] = await broker.receive('src', { max: 1, waitMs: 0 });
    assert.equal(again.attempt, 1, 'redrive resets attempts');
    assert.equal(again.id, 'm');
    await broker.nack('src', again.receipt, { requeue: false });
    await reopen();

    [dead] = broker.peek('src.dlq', { limit: 1, offset: 0 });
    assert.equal(dead.headers['x-usher-death-count'], '2');
    assert.equal(JSON.parse(dead.headers['x-usher-deaths']).length, 2);
    assert.equal(dead.headers['x-usher-first-death-reason'], 'rejected');
  });

  it('expires messages to the DLQ with reason expired', async () => {
    await broker.createQueue('q', { messageTtlMs: 1000, deadLetter: 'q.dlq' });
    await broker.publish('q', [{ body: text('old') }]);
    clock.advance(1000);
    broker.runDue();
    await broker.receive('q', { max: 1, waitMs: 0 });

    const [dead] = broker.peek('q.dlq', { limit: 1, offset: 0 });
    assert.equal(dead.headers['x-usher-death-reason'], 'expired');
    assert.equal(broker.getQueue('q').stats.expired, 1);
  });

  // Found with two queues whose TTLs expire into each other over HTTP: the
  // message went round for ever, each lap adding to x-usher-deaths, and
  // the log was written at tens of MB/s by one message.
  it('drops a message that expires its way round a dead-letter loop back to a queue', async () => {
    await broker.createQueue('ping', { messageTtlMs: 1000, deadLetter: 'pong' });
    await broker.createQueue('pong', { messageTtlMs: 1000, deadLetter: 'ping' });
    await broker.publish('ping', [{ id: 'loop', body: text('x') }]);
    for (let lap = 0; lap < 4; lap++) {
      clock.advance(1000);
      broker.runDue();
    }

    assert.equal(broker.getQueue('ping').stats.total + broker.getQueue('pong').stats.total, 0);
    assert.equal(broker.getQueue('ping').stats.deadLettered, 1, 'ping -> pong once');
    assert.equal(broker.getQueue('pong').stats.dropped, 1, 'pong -> ping would close the loop');
  });

  it('lets a rejected message go round a dead-letter loop: a consumer chose it', async () => {
    await broker.createQueue('ping', { messageTtlMs: 1000, deadLetter: 'pong' });
    await broker.createQueue('pong', { deadLetter: 'ping' });
    await broker.publish('ping', [{ id: 'round', body: text('x') }]);
    clock.advance(1000);
    broker.runDue();
    const [inPong] = await broker.receive('pong', { max: 1, waitMs: 0 });
    await broker.nack('pong', inPong.receipt, { requeue: false });

    const [back] = broker.peek('ping', { limit: 1, offset: 0 });
    assert.equal(back?.id, 'round');
  });

  it('redrives to a named queue keeping id, body and headers', async () => {
    await broker.createQueue('a', { deadLetter: 'a.dlq' });
    await broker.createQueue('b', {});
    await broker.publish('a', [{ id: 'x', body: text('1'), headers: { h: '1' } }]);
    const [message] = await broker.receive('a', { max: 1, waitMs: 0 });
    await broker.nack('a', message.receipt, { requeue: false });

    assert.deepEqual(await broker.redrive('a.dlq', { to: 'b' }), { moved: 1 });
    const [moved] = await broker.receive('b', { max: 1, waitMs: 0 });
    assert.equal(moved.id, 'x');
    assert.equal(moved.body.toString(), '1');
    assert.equal(moved.headers.h, '1');
    assert.equal(moved.attempt, 1);
  });
});

describe('restart', () => {
  it('keeps priority order over requeue and restart (C7)', async () => {
    await broker.createQueue('q', { backoff: { initialMs: 0, jitter: 0 } });
    for (let i = 0; i < 5; i++) await broker.publish('q', [{ body: text(`low${i}`) }]);
    await broker.publish('q', [{ body: text('high'), priority: 9 }]);
    const [high] = await broker.receive('q', { max: 1, waitMs: 0 });
    await broker.nack('q', high.receipt, {});

    await reopen();
    await broker.publish('q', [{ body: text('mid'), priority: 5 }]);
    const all = await broker.receive('q', { max: 10, waitMs: 0 });
    assert.deepEqual(bodies(all), ['high', 'mid', 'low0', 'low1', 'low2', 'low3', 'low4']);
  });

  it('returns in-flight messages to ready, drops acked and purged ones', async () => {
    await broker.createQueue('q', {});
    await broker.createQueue('gone', {});
    await broker.publish('gone', [{ body: text('x') }]);
    await broker.deleteQueue('gone');
    await broker.publish('q', [1, 2, 3, 4].map((i) => ({ body: text(String(i)) })));
    const leased = await broker.receive('q', { max: 2, waitMs: 0 });
    await broker.ack('q', [leased[0].receipt]);

    await reopen();
    assert.deepEqual(broker.listQueues().map((q) => q.name), ['q']);
    const stats = broker.getQueue('q').stats;
    assert.deepEqual([stats.ready, stats.inFlight], [3, 0]);
    assert.deepEqual(bodies(await broker.receive('q', { max: 10, waitMs: 0 })), ['2', '3', '4']);

    await reopen();
    assert.deepEqual(await broker.purgeQueue('q'), { purged: 3 });
    await reopen();
    assert.equal(broker.getQueue('q').stats.total, 0);
  });

  it('brings delayed messages back at their original time (C11 in-process)', async () => {
    await broker.createQueue('q', {});
    await broker.publish('q', [{ body: text('A'), delayMs: 5000 }, { body: text('B'), delayMs: 120_000 }]);
    clock.advance(2000);
    await reopen();

    clock.advance(10_000);
    assert.deepEqual(bodies(await broker.receive('q', { max: 10, waitMs: 0 })), ['A']);
    clock.advance(107_999);
    assert.deepEqual(await broker.receive('q', { max: 10, waitMs: 0 }), []);
    clock.advance(1);
    assert.deepEqual(bodies(await broker.receive('q', { max: 10, waitMs: 0 })), ['B']);
  });
});

describe('FIFO through the broker', () => {
  it('keeps order in a group over retries', async () => {
    await broker.createQueue('f', { fifo: true, backoff: { initialMs: 0, jitter: 0 } });
    await broker.publish('f', ['1', '2', '3'].map((n) => ({ body: text(n), group: 'g' })));

    const [first] = await broker.receive('f', { max: 1, waitMs: 0 });
    assert.deepEqual(await broker.receive('f', { max: 1, waitMs: 0 }), []);
    await broker.nack('f', first.receipt, {});
    assert.deepEqual(bodies(await broker.receive('f', { max: 10, waitMs: 0 })), ['1', '2', '3']);
  });
});
