// A purge or a queue delete whose records the disk refuses (ENOSPC, EIO)
// changes nothing: the caller hears the storage error, the messages are
// still there and consumable, cold ones (rows past a hot window of 3:
// delayed, retried, FIFO) included, and a restart over the same folder
// finds what the caller was told.

import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import type { Subscriber } from '../../src/broker/types.js';
import { ManualClock, openBroker, tempDir, text } from '../helpers.js';
import { FaultyIo } from '../storage/helpers.js';

let dir: ReturnType<typeof tempDir>;
let clock: ManualClock;
let io: FaultyIo;
let broker: Broker;

const open = () => openBroker(dir.path, {
  clock: clock.read,
  random: () => 0,
  storeIo: io,
  hotReadyLimit: 3,
  hotMemoryBytes: 0,
});

beforeEach(async () => {
  dir = tempDir();
  clock = new ManualClock();
  io = new FaultyIo();
  broker = await open();
});

afterEach(async () => {
  await broker.close();
  dir.remove();
});

async function reopen(): Promise<void> {
  await broker.close();
  broker = await open();
}

/** The storage error, with the disk's own code as its cause. */
function storageError(code: string) {
  return (err: unknown): boolean => {
    assert.equal((err as { code?: string }).code, 'STORE_UNAVAILABLE');
    assert.equal((err as { cause?: NodeJS.ErrnoException }).cause?.code, code);
    return true;
  };
}

/**
 * Ten ready messages and ten delayed ones (FIFO: groups g0, g1 and g9),
 * three retried with a delay, and one leased: most of them cold.
 */
async function fill(fifo: boolean): Promise<string> {
  await broker.createQueue('q', { fifo, maxAttempts: 0 });
  const group = (name: string) => (fifo ? name : undefined);
  for (let i = 0; i < 10; i++) {
    await broker.publish('q', [{ id: `p${i}`, body: text(`p${i}`), group: group(`g${i % 2}`) }]);
    await broker.publish('q', [
      { id: `d${i}`, body: text(`d${i}`), delayMs: 5000 + i, group: group('g9') },
    ]);
  }
  const got = await broker.receive('q', { max: 4, waitMs: 0 });
  for (const m of got.slice(1)) {
    await broker.nack('q', m.receipt, { requeue: true, delayMs: 3000 });
  }
  return got[0].receipt;
}

/** What a queue holds: its figures, and its messages' ids in order. */
function contents(queue: string) {
  const { ready, delayed, inFlight, total, bytes } = broker.getQueue(queue).stats;
  const ids = broker.peek(queue, { limit: 100, offset: 0 }).map((m) => m.id).sort();
  return { ready, delayed, inFlight, total, bytes, ids };
}

/** Every message, delays come due: bodies by FIFO group (one group when not FIFO). */
async function drain(queue: string): Promise<Map<string, string[]>> {
  clock.advance(60_000);
  broker.runDue();
  const byGroup = new Map<string, string[]>();
  for (;;) {
    const batch = await broker.receive(queue, { max: 50, waitMs: 0 });
    if (batch.length === 0) return byGroup;
    for (const m of batch) {
      const group = m.group ?? '';
      byGroup.set(group, [...(byGroup.get(group) ?? []), m.body.toString()]);
    }
    await broker.ack(queue, batch.map((m) => m.receipt));
  }
}

const count = (byGroup: Map<string, string[]>) =>
  [...byGroup.values()].reduce((sum, bodies) => sum + bodies.length, 0);

describe('a purge the disk refuses', () => {
  for (const fifo of [false, true]) {
    const kind = fifo ? 'FIFO' : 'best-effort';

    it(`puts every message back, cold ones included (${kind})`, async () => {
      const leased = await fill(fifo);
      const before = contents('q');
      assert.equal(before.ids.length, before.total);

      io.failNext('writev', 'ENOSPC', true);
      const purging = broker.purgeQueue('q');
      // Lands after the failed batch, in a batch of its own.
      await nextTurn();
      const newcomer = broker.publish('q', [
        { id: 'new', body: text('new'), group: fifo ? 'g0' : undefined },
      ]);
      await assert.rejects(purging, storageError('ENOSPC'));
      await newcomer;

      const after = contents('q');
      assert.deepEqual(after, {
        ...before,
        ready: before.ready + 1,
        total: before.total + 1,
        bytes: before.bytes + 3,
        ids: [...before.ids, 'new'].sort(),
      });
      assert.deepEqual(await broker.ack('q', [leased]), [true], 'the lease survived');

      await reopen();
      const restarted = contents('q');
      assert.deepEqual(restarted.ids, after.ids.filter((id) => id !== 'p0'));
      const byGroup = await drain('q');
      assert.equal(count(byGroup), 20);
      if (fifo) {
        assert.deepEqual(byGroup.get('g0'), ['p2', 'p4', 'p6', 'p8', 'new']);
        assert.deepEqual(byGroup.get('g1'), ['p1', 'p3', 'p5', 'p7', 'p9']);
        assert.deepEqual(byGroup.get('g9'), Array.from({ length: 10 }, (_, i) => `d${i}`));
      }
    });

    it(`leaves them consumable before a restart (${kind})`, async () => {
      await fill(fifo);
      const { total } = broker.getQueue('q').stats;

      io.failNext('writev', 'EIO');
      await assert.rejects(broker.purgeQueue('q'), storageError('EIO'));
      // Everything but the leased message, whose lease ends with the clock's step.
      assert.equal(count(await drain('q')), total);

      await reopen();
      assert.equal(broker.getQueue('q').stats.total, 0);
    });
  }

  it('purges for good once the disk takes it', async () => {
    await fill(false);
    io.failNext('writev', 'EIO');
    await assert.rejects(broker.purgeQueue('q'), storageError('EIO'));

    assert.deepEqual(await broker.purgeQueue('q'), { purged: 19 });
    assert.equal(broker.getQueue('q').stats.inFlight, 1);
    await reopen();
    assert.equal(count(await drain('q')), 1, 'the message leased at the purge');
  });
});

describe('a queue delete the disk refuses', () => {
  it('keeps the queue, its messages and its consumers', async () => {
    const leased = await fill(false);
    const before = contents('q');
    let cancelled = 0;
    const subscriber: Subscriber = {
      leaseMs: 60_000,
      credit: () => 0,
      deliver: () => {},
      cancelled: () => {
        cancelled++;
      },
    };
    broker.subscribe('q', subscriber);
    const deleted: string[] = [];
    broker.onQueueDeleted((name) => deleted.push(name));

    io.failNext('writev', 'EIO');
    await assert.rejects(broker.deleteQueue('q'), storageError('EIO'));

    assert.equal(broker.hasQueue('q'), true);
    assert.deepEqual(contents('q'), before);
    assert.equal(cancelled, 0, 'the subscriber was not told');
    assert.deepEqual(deleted, [], 'nor the listener');
    assert.deepEqual(await broker.ack('q', [leased]), [true]);
    await broker.publish('q', [{ id: 'new', body: text('new') }]);

    await reopen();
    assert.deepEqual(contents('q').ids, [...before.ids.filter((id) => id !== 'p0'), 'new'].sort());
    assert.equal(count(await drain('q')), 20);
  });

  it('answers a second delete asked meanwhile alike', async () => {
    await fill(false);
    let cancelled = 0;
    broker.subscribe('q', {
      leaseMs: 60_000, credit: () => 0, deliver: () => {}, cancelled: () => cancelled++,
    });

    io.failNext('writev', 'EIO');
    const twice = [broker.deleteQueue('q'), broker.deleteQueue('q')];
    for (const deleting of twice) await assert.rejects(deleting, storageError('EIO'));
    assert.equal(broker.hasQueue('q'), true);

    await Promise.all([broker.deleteQueue('q'), broker.deleteQueue('q')]);
    assert.equal(broker.hasQueue('q'), false);
    assert.equal(cancelled, 1, 'told once');
  });

  it('deletes for good once the disk takes it', async () => {
    await fill(true);
    io.failNext('writev', 'ENOSPC', true);
    await assert.rejects(broker.deleteQueue('q'), storageError('ENOSPC'));

    await broker.deleteQueue('q');
    assert.equal(broker.hasQueue('q'), false);
    await reopen();
    assert.equal(broker.hasQueue('q'), false);
    await broker.createQueue('q', { fifo: true });
    await reopen();
    assert.equal(broker.getQueue('q').stats.total, 0);
  });
});

describe('a purge the disk refuses while the queue is deleted', () => {
  it('leaves none of its messages to a queue made again', async () => {
    await fill(false);

    io.failNext('writev', 'EIO');
    const purging = broker.purgeQueue('q');
    // Asked while the purge is written: it lands after the failed batch.
    await nextTurn();
    const deleting = broker.deleteQueue('q');
    await assert.rejects(purging, storageError('EIO'));
    await deleting;
    assert.equal(broker.hasQueue('q'), false);

    await reopen();
    await broker.createQueue('q', {});
    await reopen();
    assert.equal(broker.getQueue('q').stats.total, 0);
  });
});
