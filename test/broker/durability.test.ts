// Per-queue durability: `fsync` (default) confirms once on disk, `os` once
// written to the OS, `memory` never writes and is gone after a restart.
// Messages moving between a memory queue and a logged one are logged as
// arriving or leaving. Declared over the broker, HTTP and AMQP.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import amqp from 'amqplib';

import type { Broker } from '../../src/broker/broker.js';
import { createAmqpServer } from '../../src/amqp/server.js';
import { ManualClock, openBroker, silentLogger, tempDir, text } from '../helpers.js';
import { call, startHttp } from '../http/harness.js';
import { FaultyIo } from '../storage/helpers.js';

let dir: ReturnType<typeof tempDir>;
let clock: ManualClock;
let io: FaultyIo;
let broker: Broker;

async function open(): Promise<Broker> {
  io = new FaultyIo();
  return openBroker(dir.path, { clock: clock.read, storeIo: io, sync: true, random: () => 0 });
}

async function reopen(): Promise<void> {
  await broker.close();
  broker = await open();
}

const ids = (queue: string) => broker.peek(queue, { limit: 100, offset: 0 }).map((m) => m.id);

beforeEach(async () => {
  dir = tempDir('usher-durability-');
  clock = new ManualClock();
  broker = await open();
});

afterEach(async () => {
  await broker.close();
  dir.remove();
});

describe('durability modes', () => {
  it('fsync is the default and syncs before confirming', async () => {
    const { queue } = await broker.createQueue('q', {});
    assert.equal(queue.settings.durability, 'fsync');
    const syncs = io.calls.fdatasync;
    await broker.publish('q', [{ id: 'a', body: text('a') }]);
    assert.equal(io.calls.fdatasync, syncs + 1);
  });

  it('os confirms once written, and the messages survive a restart', async () => {
    await broker.createQueue('q', { durability: 'os' });
    const syncs = io.calls.fdatasync;
    const writes = io.calls.writev;
    await broker.publish('q', [{ id: 'a', body: text('a') }]);
    const [message] = await broker.receive('q', { max: 1, waitMs: 0 });
    await broker.nack('q', message.receipt, {});
    assert.equal(io.calls.writev, writes + 2, 'the publish and the retry were written');
    assert.equal(io.calls.fdatasync, syncs, 'without an fdatasync');

    await reopen();
    assert.equal(broker.getQueue('q').settings.durability, 'os');
    assert.deepEqual(ids('q'), ['a']);
    assert.equal(broker.peek('q', { limit: 1, offset: 0 })[0].failures, 1);
  });

  it('an os batch shares the sync of an fsync one in flight with it', async () => {
    await broker.createQueue('fast', { durability: 'os' });
    await broker.createQueue('safe', {});
    const syncs = io.calls.fdatasync;
    await Promise.all([
      broker.publish('fast', [{ body: text('f') }]),
      broker.publish('safe', [{ body: text('s') }]),
    ]);
    assert.equal(io.calls.fdatasync, syncs + 1);
  });

  it('memory never writes, works like any queue, and is gone after a restart', async () => {
    await broker.createQueue('mem', { durability: 'memory', backoff: { initialMs: 0, jitter: 0 } });
    const writes = io.calls.writev;
    await broker.publish('mem', ['a', 'b', 'c'].map((id) => ({ id, body: text(id) })));
    const [a, b] = await broker.receive('mem', { max: 2, waitMs: 0 });
    assert.deepEqual(await broker.ack('mem', [a.receipt]), [true]);
    await broker.nack('mem', b.receipt, {});
    const [again] = await broker.publish('mem', [{ id: 'c', body: text('c') }]);
    assert.equal(again.duplicate, true);
    await broker.createQueue('mem.other', { durability: 'memory' });
    assert.deepEqual(await broker.redrive('mem', { to: 'mem.other' }), { moved: 2 });
    assert.deepEqual(await broker.redrive('mem.other', { to: 'mem' }), { moved: 2 });
    await broker.purgeQueue('mem');
    await broker.publish('mem', [{ id: 'd', body: text('d') }]);
    assert.equal(io.calls.writev, writes, 'nothing of a memory queue reaches the log');

    await reopen();
    assert.equal(broker.hasQueue('mem'), false);
    assert.equal(broker.health().store.liveMessages, 0);
  });

  it('dead-letters from memory to a logged queue are logged whole', async () => {
    await broker.createQueue('mem', { durability: 'memory', deadLetter: 'mem.dlq' });
    await broker.publish('mem', [{ id: 'x', body: text('payload'), headers: { h: '1' } }]);
    const [message] = await broker.receive('mem', { max: 1, waitMs: 0 });
    await broker.nack('mem', message.receipt, { requeue: false });

    await reopen();
    const [dead] = broker.peek('mem.dlq', { limit: 1, offset: 0 });
    assert.equal(dead.id, 'x');
    assert.equal(dead.body.toString(), 'payload');
    assert.equal(dead.headers.h, '1');
    assert.equal(dead.headers['x-usher-death-reason'], 'rejected');
    assert.equal(broker.health().store.liveMessages, 1);
  });

  it('moves from a logged queue into a memory one settle it in the log', async () => {
    await broker.createQueue('mem.dlq', { durability: 'memory' });
    await broker.createQueue('q', { deadLetter: 'mem.dlq' });
    await broker.createQueue('parked', {});
    await broker.publish('q', [{ id: 'x', body: text('x') }]);
    await broker.publish('parked', [{ id: 'y', body: text('y') }]);
    const [message] = await broker.receive('q', { max: 1, waitMs: 0 });
    await broker.nack('q', message.receipt, { requeue: false });
    assert.deepEqual(ids('mem.dlq'), ['x']);
    assert.deepEqual(await broker.redrive('parked', { to: 'mem.dlq' }), { moved: 1 });
    // And back into a logged queue: logged whole again.
    assert.deepEqual(await broker.redrive('mem.dlq', { to: 'q', max: 1 }), { moved: 1 });

    await reopen();
    assert.deepEqual(ids('q'), ['x']);
    assert.deepEqual(ids('parked'), []);
    assert.equal(broker.hasQueue('mem.dlq'), false);
    assert.equal(broker.health().store.liveMessages, 1);
  });

  it('refuses an unknown mode and a change of mode', async () => {
    await assert.rejects(
      broker.createQueue('q', { durability: 'disk' as never }),
      { code: 'INVALID_ARGUMENT', field: 'durability' },
    );
    await broker.createQueue('q', {});
    await assert.rejects(broker.createQueue('q', { durability: 'memory' }), {
      code: 'QUEUE_EXISTS',
      message: /durability: fsync now, memory asked/,
    });
  });
});

describe('durability over the wire', () => {
  it('HTTP takes and shows the mode, and refuses an unknown one', async () => {
    const h = await startHttp();
    try {
      const made = await call(h.app, 'PUT', '/queues/q', { durability: 'os' });
      assert.equal(made.body.settings.durability, 'os');
      const bad = await call(h.app, 'PUT', '/queues/r', { durability: 'never' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.field, 'durability');
    } finally {
      await h.close();
    }
  });

  it('an AMQP queue declared durable=false is a memory queue', async () => {
    const server = await createAmqpServer({
      broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 1024 * 1024,
    });
    const address = await server.listen(0, '127.0.0.1');
    const connection = await amqp.connect(`amqp://guest:guest@127.0.0.1:${address.port}`);
    try {
      const channel = await connection.createChannel();
      await channel.assertQueue('transient', { durable: false });
      await channel.assertQueue('kept', { durable: true });
      assert.equal(broker.getQueue('transient').settings.durability, 'memory');
      assert.equal(broker.getQueue('kept').settings.durability, 'fsync');
    } finally {
      await connection.close();
      await server.close();
    }
  });
});
