// What happens around a queue delete while its records wait for the disk
// (a sync held): messages that reach the queue meanwhile go with it, a
// publish that lands after it is refused and leaves nothing, and
// compaction copies none of its messages past their `settled` records.
// Each is checked where it would show: a restart, then a queue made again
// under the name, which would take any message of the old one still live
// in the log.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import type { BrokerOptions } from '../../src/broker/broker.js';
import { ManualClock, heldDisk, openBroker, tempDir, text, until } from '../helpers.js';

let dir: ReturnType<typeof tempDir>;
let disk: ReturnType<typeof heldDisk>;
let broker: Broker;
let options: Partial<BrokerOptions>;

beforeEach(async () => {
  dir = tempDir();
  disk = heldDisk();
  options = { clock: new ManualClock().read, sync: true, storeIo: disk.io };
  broker = await openBroker(dir.path, options);
});

afterEach(async () => {
  disk.release();
  await broker.close();
  dir.remove();
});

/** What a queue made again under `name` holds after a restart. */
async function madeAgainAfterRestart(name: string): Promise<number> {
  await broker.close();
  broker = await openBroker(dir.path, options);
  assert.equal(broker.hasQueue(name), false);
  await broker.createQueue(name, {});
  await broker.close();
  broker = await openBroker(dir.path, options);
  return broker.getQueue(name).stats.total;
}

const settled = <T>(promise: Promise<T>) =>
  promise.then(() => 'ok', (err: { code?: string }) => err.code);

it('a publish landing while the delete is written goes with the queue', async () => {
  await broker.createQueue('q', {});
  await broker.publish('q', [{ body: text('before') }]);

  disk.hold();
  const publishing = settled(broker.publish('q', [{ body: text('landing') }]));
  await until('the publish to wait for its sync', () => disk.syncsWaiting === 1);
  const deleting = settled(broker.deleteQueue('q'));
  disk.release();

  assert.equal(await publishing, 'ok', 'it landed in the queue, which was still there');
  assert.equal(await deleting, 'ok');
  assert.equal(broker.hasQueue('q'), false);
  assert.equal(await madeAgainAfterRestart('q'), 0);
});

it('a publish landing after the delete is refused and leaves nothing', async () => {
  await broker.createQueue('q', {});

  disk.hold();
  const deleting = settled(broker.deleteQueue('q'));
  await until('the delete to wait for its sync', () => disk.syncsWaiting === 1);
  // The queue is there until its delete lands: the publish is written after it.
  const publishing = settled(broker.publish('q', [{ body: text('late') }]));
  disk.release();

  assert.equal(await deleting, 'ok');
  assert.equal(await publishing, 'QUEUE_NOT_FOUND');
  assert.equal(await madeAgainAfterRestart('q'), 0);
});

it('compaction during the delete copies none of its messages', async () => {
  await broker.close();
  options = { ...options, segmentBytes: 4096, checkpoints: { enabled: false } };
  broker = await openBroker(dir.path, options);
  await broker.createQueue('q', {});
  await broker.publish('q', [1, 2, 3].map((i) => ({ body: text(`m${i}`) })));
  // Beside them in the oldest segment a message of another queue, then a
  // large one in a segment of its own: acked, it leaves garbage enough
  // for compaction to copy the oldest segment's live messages forward.
  await broker.createQueue('other', {});
  await broker.publish('other', [{ body: Buffer.alloc(4096) }]);
  await broker.publish('other', [{ body: Buffer.alloc(32 * 1024) }]);
  // Rolls to the next segment now, not while the ack waits.
  await broker.publish('other', [{ body: text('small') }]);
  const [, large] = await broker.receive('other', { max: 2, waitMs: 0 });

  disk.hold();
  const acking = broker.ack('other', [large.receipt]);
  await until('the ack to wait for its sync', () => disk.syncsWaiting === 1);
  // Written after the ack, as are the copies of the compaction round
  // that follows the ack's landing.
  const deleting = settled(broker.deleteQueue('q'));
  disk.release();
  await acking;
  assert.equal(await deleting, 'ok');
  await until('the copies to land', () => broker.health().store.compactedMessages > 0);

  assert.equal(await madeAgainAfterRestart('q'), 0);
});

/** What `queue` holds after a restart. */
async function afterRestart(queue: string): Promise<number> {
  await broker.close();
  broker = await openBroker(dir.path, options);
  return broker.getQueue(queue).stats.total;
}

it('a message dead-lettered out of the queue while its delete is written stays', async () => {
  await broker.createQueue('dlq', {});
  await broker.createQueue('q', { deadLetter: 'dlq' });
  await broker.publish('q', [{ body: text('dies') }]);
  const [leased] = await broker.receive('q', { max: 1, waitMs: 0 });

  disk.hold();
  const deleting = settled(broker.deleteQueue('q'));
  await until('the delete to wait for its sync', () => disk.syncsWaiting === 1);
  // The queue works until its delete lands: the nack moves the message out.
  const nacking = settled(broker.nack('q', leased.receipt, { requeue: false }));
  disk.release();

  assert.equal(await deleting, 'ok');
  assert.equal(await nacking, 'ok');
  assert.equal(broker.getQueue('dlq').stats.total, 1);
  assert.equal(await afterRestart('dlq'), 1, 'the dead letter comes back where it was');
});

it('a message redriven out of the queue while its delete is written stays', async () => {
  await broker.createQueue('q', {});
  await broker.createQueue('elsewhere', {});
  await broker.publish('q', [{ body: text('moves') }]);

  disk.hold();
  const deleting = settled(broker.deleteQueue('q'));
  await until('the delete to wait for its sync', () => disk.syncsWaiting === 1);
  const redriving = settled(broker.redrive('q', { to: 'elsewhere' }));
  disk.release();

  assert.equal(await deleting, 'ok');
  assert.equal(await redriving, 'ok');
  assert.equal(broker.getQueue('elsewhere').stats.total, 1);
  assert.equal(await afterRestart('elsewhere'), 1, 'the moved message comes back');
});

it('the id of a publish refused for a delete does not dedup in a queue made again', async () => {
  await broker.createQueue('q', {});

  disk.hold();
  const deleting = settled(broker.deleteQueue('q'));
  await until('the delete to wait for its sync', () => disk.syncsWaiting === 1);
  const publishing = settled(broker.publish('q', [{ id: 'x', body: text('late') }]));
  disk.release();
  assert.equal(await deleting, 'ok');
  assert.equal(await publishing, 'QUEUE_NOT_FOUND');

  assert.equal(await madeAgainAfterRestart('q'), 0);
  const [answer] = await broker.publish('q', [{ id: 'x', body: text('new') }]);
  assert.equal(answer.duplicate, false, 'x was never stored in this queue');
  assert.equal(broker.getQueue('q').stats.total, 1);
});

it('a queue declared while its delete is written is made after it', async () => {
  await broker.createQueue('q', {});
  await broker.publish('q', [{ body: text('old') }]);

  disk.hold();
  const deleting = settled(broker.deleteQueue('q'));
  await until('the delete to wait for its sync', () => disk.syncsWaiting === 1);
  // Answered as of the old queue, its record came after the delete's, and
  // a restart brought back a queue that memory no longer had.
  const declaring = broker.createQueue('q', { maxLength: 5 });
  disk.release();
  assert.equal(await deleting, 'ok');
  const { created } = await declaring;

  assert.equal(created, true);
  assert.equal(broker.getQueue('q').settings.maxLength, 5);
  assert.equal(await afterRestart('q'), 0);
  assert.equal(broker.getQueue('q').settings.maxLength, 5);
});

it('a queue declared with a dead-letter queue being deleted makes it again', async () => {
  await broker.createQueue('dlq', {});

  disk.hold();
  const deleting = settled(broker.deleteQueue('dlq'));
  await until('the delete to wait for its sync', () => disk.syncsWaiting === 1);
  const declaring = settled(broker.createQueue('q', { deadLetter: 'dlq', maxAttempts: 1 }));
  disk.release();
  assert.equal(await deleting, 'ok');
  assert.equal(await declaring, 'ok');

  assert.equal(broker.hasQueue('dlq'), true, 'made, as for a queue declared after the delete');
  await broker.publish('q', [{ body: text('dies') }]);
  const [leased] = await broker.receive('q', { max: 1, waitMs: 0 });
  await broker.nack('q', leased.receipt, { requeue: false });
  assert.equal(await afterRestart('dlq'), 1, 'its dead letter was kept');
});

// A publish still being written when its queue's delete starts lands
// before the delete's records. It used to be settled by a later write of
// its own, and a crash in between (seen with kill -9 of `usher serve`:
// publishes in flight when a delete was asked came back in a queue made
// again under the name) left it live in the log, as this write failing
// does. Now the delete's own write settles it.
it('a publish written as its queue is deleted goes with it in the same write', async () => {
  await broker.close();
  let failWrites = false;
  const io = {
    ...disk.io,
    async writev(fd: number, buffers: readonly Buffer[], position: number) {
      if (failWrites) throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
      return disk.io.writev(fd, buffers, position);
    },
  };
  options = { ...options, storeIo: io };
  broker = await openBroker(dir.path, options);
  await broker.createQueue('q', {});

  disk.hold();
  const publishing = settled(broker.publish('q', [{ body: text('in flight') }]));
  await until('the publish to wait for its sync', () => disk.syncsWaiting === 1);
  const deleting = settled(broker.deleteQueue('q'));
  await until('the delete to wait for its sync', () => disk.syncsWaiting === 2);
  // Both are written; any write after them fails.
  failWrites = true;
  disk.release();
  assert.equal(await publishing, 'ok', 'it landed while the queue was there');
  assert.equal(await deleting, 'ok');
  failWrites = false;

  assert.equal(await madeAgainAfterRestart('q'), 0, 'the publish went with the queue');
});

it('a queue being deleted takes no publish', async () => {
  await broker.createQueue('q', {});

  disk.hold();
  const deleting = settled(broker.deleteQueue('q'));
  await until('the delete to wait for its sync', () => disk.syncsWaiting === 1);
  await assert.rejects(broker.publish('q', [{ body: text('late') }]),
    (err: { code?: string }) => err.code === 'QUEUE_NOT_FOUND');
  assert.equal(disk.syncsWaiting, 1, 'nothing written for it');
  disk.release();
  assert.equal(await deleting, 'ok');
});
