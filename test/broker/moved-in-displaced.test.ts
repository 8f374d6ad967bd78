// A message moved into a drop-oldest queue that is full may be the one
// that queue displaces at once: moved messages keep their seq, and the
// oldest waiting message is the lowest. The displacement's record (a
// `settled` one, or its dead letter's) must come after the move's in the
// log, or a restart undoes the displacement.

import assert from 'node:assert/strict';
import { it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import {
  ManualClock, brokerPerTest, failNextToFinish, heldDisk, openBroker, tempDir, text, until,
} from '../helpers.js';

const fixture = brokerPerTest({ sync: true });

const bodies = (queue: string) =>
  fixture.broker.peek(queue, { limit: 10, offset: 0 }).map((m) => String(m.body));

it('a dead letter its full dead-letter queue displaces stays gone after a restart', async () => {
  const { broker } = fixture;
  await broker.createQueue('work', { deadLetter: 'dlq' });
  await broker.createQueue('dlq', { maxLength: 1, overflow: 'drop-oldest' });
  await broker.publish('work', [{ body: text('older') }]);
  await broker.publish('dlq', [{ body: text('newer') }]);
  const [leased] = await broker.receive('work', { max: 1, waitMs: 0 });

  await broker.nack('work', leased.receipt, { requeue: false });
  assert.deepEqual(bodies('dlq'), ['newer'], 'the dead letter (the oldest) displaced');

  await fixture.reopen();
  assert.deepEqual(bodies('work'), []);
  assert.deepEqual(bodies('dlq'), ['newer']);
});

it('a redriven message its full target displaces stays gone after a restart', async () => {
  const { broker } = fixture;
  await broker.createQueue('parked', {});
  await broker.createQueue('target', { maxLength: 1, overflow: 'drop-oldest' });
  await broker.publish('parked', [{ body: text('older') }]);
  await broker.publish('target', [{ body: text('newer') }]);

  assert.deepEqual(await broker.redrive('parked', { to: 'target' }), { moved: 1 });
  assert.deepEqual(bodies('target'), ['newer'], 'the redriven one (the oldest) displaced');

  await fixture.reopen();
  assert.deepEqual(bodies('parked'), []);
  assert.deepEqual(bodies('target'), ['newer']);
});

it('a held dead letter displaced once its delete failed stays gone after a restart', async () => {
  const dir = tempDir();
  const disk = heldDisk();
  const failing = failNextToFinish(disk.io);
  const options = { clock: new ManualClock().read, sync: true, storeIo: failing.io };
  let broker: Broker = await openBroker(dir.path, options);
  const inDlq = () => broker.peek('dlq', { limit: 10, offset: 0 }).map((m) => String(m.body));
  try {
    await broker.createQueue('work', { deadLetter: 'dlq' });
    await broker.createQueue('dlq', { maxLength: 1, overflow: 'drop-oldest' });
    await broker.publish('work', [{ body: text('older') }]);
    await broker.publish('dlq', [{ body: text('newer') }]);
    const [leased] = await broker.receive('work', { max: 1, waitMs: 0 });

    // The dead letter waits for the delete of "dlq" (dead-lettering.ts),
    // which fails: it goes into the queue left, full, which displaces it.
    disk.hold();
    const deleting = broker.deleteQueue('dlq').catch((err: { code?: string }) => err.code);
    await until('the delete to wait for its sync', () => disk.syncsWaiting === 1);
    const nacking = broker.nack('work', leased.receipt, { requeue: false });
    failing.arm();
    disk.release();
    assert.equal(await deleting, 'STORE_UNAVAILABLE');
    assert.deepEqual(await nacking, { outcome: 'dead-lettered', reason: 'rejected' });
    assert.deepEqual(inDlq(), ['newer']);

    await broker.close();
    broker = await openBroker(dir.path, { clock: options.clock, sync: true });
    assert.deepEqual(broker.peek('work', { limit: 10, offset: 0 }), []);
    assert.deepEqual(inDlq(), ['newer']);
  } finally {
    disk.release();
    await broker.close();
    dir.remove();
  }
});
