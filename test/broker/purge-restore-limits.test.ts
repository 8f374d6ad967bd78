// A purge takes its messages out before its `settled` records are
// written and puts them back if that write fails (engine/purged.ts).
// Publishes that landed meanwhile may have filled the queue to its
// limits: what the restore then does under each overflow policy, and
// what the counts say, before and after a restart.

import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import type { QueueSettingsInput } from '../../src/broker/types.js';
import { ManualClock, openBroker, tempDir, text } from '../helpers.js';
import { FaultyIo } from '../storage/helpers.js';

let dir: ReturnType<typeof tempDir>;
let io: FaultyIo;
let broker: Broker;
/** Messages in memory per queue; past it they stay on disk only (cold). */
let hotReadyLimit: number | undefined;

const open = () => openBroker(dir.path, {
  clock: new ManualClock().read,
  random: () => 0,
  storeIo: io,
  ...(hotReadyLimit === undefined ? {} : { hotReadyLimit, hotMemoryBytes: 0 }),
});

beforeEach(async () => {
  dir = tempDir();
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

const publish = (queue: string, id: string) =>
  broker.publish(queue, [{ id, body: text(id) }]);

/** `queue` holding old0..old2, a purge that fails, new0..new2 landed meanwhile. */
async function purgeFailsBehindNewcomers(queue: string, settings: QueueSettingsInput) {
  await broker.createQueue(queue, { maxAttempts: 0, ...settings });
  for (let i = 0; i < 3; i++) await publish(queue, `old${i}`);

  io.failNext('writev', 'EIO');
  const purging = broker.purgeQueue(queue);
  // Asked while the purge is written: they land after its failed batch.
  await nextTurn();
  const newcomers = [0, 1, 2].map((i) => publish(queue, `new${i}`));
  await assert.rejects(purging, { code: 'STORE_UNAVAILABLE' });
  await Promise.all(newcomers);
}

/** Ids waiting in `queue`, sorted. */
function waiting(queue: string): string[] {
  return broker.peek(queue, { limit: 100, offset: 0 }).map((m) => m.id).sort();
}

function figures(queue: string) {
  const { ready, total, bytes, published, refused, overflowed, dropped, deadLettered } =
    broker.getQueue(queue).stats;
  return { ready, total, bytes, published, refused, overflowed, dropped, deadLettered };
}

function hotUsed(): number {
  return (broker as unknown as { hotMemory: { used: number } }).hotMemory.used;
}

/** Every queue deleted, nothing is left charged to the memory budget. */
async function deleteAllFreesMemory(): Promise<void> {
  for (const { name } of broker.listQueues()) await broker.deleteQueue(name);
  assert.equal(hotUsed(), 0);
}

const OLD = ['old0', 'old1', 'old2'];
const NEW = ['new0', 'new1', 'new2'];

for (const cold of [false, true]) describe(`a purge put back into a queue filled meanwhile${
  cold ? ', most of it cold' : ''}`, () => {
  beforeEach(async () => {
    hotReadyLimit = cold ? 1 : undefined;
    await reopen();
  });

  for (const overflow of ['reject-publish', 'reject-publish-dlx'] as const) {
    it(`keeps every message over maxLength and refuses publishes until under it (${overflow})`, async () => {
      await purgeFailsBehindNewcomers('q', { maxLength: 3, overflow });
      assert.deepEqual(waiting('q'), [...NEW, ...OLD].sort());
      assert.deepEqual(figures('q'), {
        ready: 6, total: 6, bytes: 24, published: 6,
        refused: 0, overflowed: 0, dropped: 0, deadLettered: 0,
      });

      await assert.rejects(publish('q', 'late0'), { code: 'QUEUE_FULL' });
      const got = await broker.receive('q', { max: 3, waitMs: 0 });
      await broker.ack('q', got.map((m) => m.receipt));
      await assert.rejects(publish('q', 'late1'), { code: 'QUEUE_FULL' }, 'at its limit');
      const one = await broker.receive('q', { max: 1, waitMs: 0 });
      await broker.ack('q', one.map((m) => m.receipt));
      await publish('q', 'late2');
      assert.deepEqual(figures('q'), {
        ready: 3, total: 3, bytes: 13, published: 7,
        refused: 2, overflowed: 0, dropped: 0, deadLettered: 0,
      });

      await reopen();
      assert.equal(broker.getQueue('q').stats.total, 3);
      assert.ok(waiting('q').includes('late2'));
      await deleteAllFreesMemory();
    });
  }

  it('keeps every message over maxBytes and refuses publishes until under it', async () => {
    await purgeFailsBehindNewcomers('q', { maxBytes: 12, overflow: 'reject-publish' });
    assert.equal(broker.getQueue('q').stats.bytes, 24);
    await assert.rejects(publish('q', 'late0'), { code: 'QUEUE_FULL' });
    const got = await broker.receive('q', { max: 4, waitMs: 0 });
    await broker.ack('q', got.map((m) => m.receipt));
    await assert.rejects(publish('q', 'late1'), { code: 'QUEUE_FULL' }, '8 + 5 bytes');
    const one = await broker.receive('q', { max: 1, waitMs: 0 });
    await broker.ack('q', one.map((m) => m.receipt));
    await publish('q', 'late2');
    assert.equal(broker.getQueue('q').stats.bytes, 9);
    await deleteAllFreesMemory();
  });

  it('lets a publish of higher priority displace as many as it takes (reject-lowest-priority)', async () => {
    await purgeFailsBehindNewcomers('q', {
      maxLength: 3, overflow: 'reject-lowest-priority', deadLetter: 'q.dlq',
    });
    assert.equal(broker.getQueue('q').stats.ready, 6);
    await assert.rejects(publish('q', 'late0'), { code: 'QUEUE_FULL' }, 'priority 0');
    await broker.publish('q', [{ id: 'urgent', body: text('urgent'), priority: 5 }]);
    assert.deepEqual(waiting('q'), ['new1', 'new2', 'urgent'], 'the oldest displaced');
    assert.equal(broker.getQueue('q').stats.overflowed, 4);
    assert.deepEqual(
      broker.peek('q.dlq', { limit: 10, offset: 0 }).map((m) => m.id).sort(),
      [...OLD, 'new0'].sort(),
    );

    await reopen();
    assert.deepEqual(waiting('q'), ['new1', 'new2', 'urgent']);
    assert.equal(broker.getQueue('q.dlq').stats.ready, 4);
    await deleteAllFreesMemory();
  });

  it('displaces the oldest, the messages put back, to hold maxLength (drop-oldest)', async () => {
    await purgeFailsBehindNewcomers('q', {
      maxLength: 3, overflow: 'drop-oldest', deadLetter: 'q.dlq',
    });
    assert.deepEqual(waiting('q'), NEW);
    assert.deepEqual(figures('q'), {
      ready: 3, total: 3, bytes: 12, published: 6,
      refused: 0, overflowed: 3, dropped: 0, deadLettered: 3,
    });
    assert.deepEqual(broker.peek('q.dlq', { limit: 10, offset: 0 }).map((m) => m.id).sort(), OLD);

    await reopen();
    assert.deepEqual(waiting('q'), NEW);
    assert.deepEqual(broker.peek('q.dlq', { limit: 10, offset: 0 }).map((m) => m.id).sort(), OLD);
    await deleteAllFreesMemory();
  });

  it('drops the oldest it displaces when there is no dead-letter queue (drop-oldest)', async () => {
    await purgeFailsBehindNewcomers('q', { maxLength: 3, overflow: 'drop-oldest' });
    assert.deepEqual(waiting('q'), NEW);
    assert.deepEqual(figures('q'), {
      ready: 3, total: 3, bytes: 12, published: 6,
      refused: 0, overflowed: 3, dropped: 3, deadLettered: 0,
    });
    await reopen();
    assert.deepEqual(waiting('q'), NEW);
    await deleteAllFreesMemory();
  });
});
