// Dead letters held for their dead-letter queue's delete
// (dead-lettering.ts #whenDeleted), under what else may happen meanwhile:
// a declare of that queue waiting too, many held then the delete failing,
// the queue they died in deleted, the broker closed. Each ends with the
// broker's memory budget (HotMemory.used) back at zero once every queue is
// gone, and a restart that agrees with what was answered. Last, when a
// held one is counted: in its queue's deaths and deadLettered together,
// once written, and not at all when it is not.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, it } from 'node:test';

import type { Broker, BrokerOptions } from '../../src/broker/broker.js';
import { DEAD_LETTER_QUEUE_SETTINGS, resolveSettings } from '../../src/broker/settings.js';
import { observationsOf } from '../../src/observe/observations.js';
import {
  ManualClock, failNextToFinish, heldDisk, openBroker, tempDir, text, until,
} from '../helpers.js';

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

const settled = <T>(promise: Promise<T>) =>
  promise.then((value) => value, (err: { code?: string }) => err.code);

function hotUsed(): number {
  return (broker as unknown as { hotMemory: { used: number } }).hotMemory.used;
}

async function deleteAll(): Promise<void> {
  for (const name of broker.listQueues().map((queue) => queue.name)) {
    await broker.deleteQueue(name);
  }
}

async function restart(): Promise<void> {
  await broker.close();
  broker = await openBroker(dir.path, { clock: options.clock, sync: true });
}

/** Starts deleting `name`; answers once its records wait for their sync. */
async function startDelete(name: string): Promise<{ deleting: Promise<unknown> }> {
  disk.hold();
  const deleting = settled(broker.deleteQueue(name));
  await until('the delete to wait for its sync', () => disk.syncsWaiting >= 1);
  return { deleting };
}

/** Deaths observed in `queue` by reason, and its deadLettered total. */
function deathsOf(queue: string) {
  const reasons = observationsOf(broker).deaths.get(queue);
  return {
    deaths: reasons === undefined ? {} : Object.fromEntries(reasons),
    deadLettered: broker.hasQueue(queue) ? broker.getQueue(queue).stats.deadLettered : null,
  };
}

/** "work", dead-lettering into "dlq", with its one message leased. */
async function oneLeasedFromWork() {
  await broker.createQueue('dlq', {});
  await broker.createQueue('work', { deadLetter: 'dlq' });
  await broker.publish('work', [{ body: text('dies') }]);
  return leaseOne('work');
}

async function leaseOne(queue: string) {
  const [leased] = await broker.receive(queue, { max: 1, waitMs: 0 });
  return leased;
}

it('a declare of the dead-letter queue asked during its delete, before a nack, makes the queue with its settings', async () => {
  const leased = await oneLeasedFromWork();
  const asked = resolveSettings('dlq', {});
  assert.notEqual(asked.maxAttempts, DEAD_LETTER_QUEUE_SETTINGS.maxAttempts);

  const { deleting } = await startDelete('dlq');
  // Asked first, both wait for the delete: the declare comes after it
  // (Queues.deletedFirst), and so should the dead letter, into the
  // queue the declare made. The dead letter made the queue first, with
  // dead-letter settings, and the declare answered as an update of it.
  const declaring = settled(broker.createQueue('dlq', {}));
  const nacking = settled(broker.nack('work', leased.receipt, { requeue: false }));
  disk.release();

  assert.equal(await deleting, undefined);
  const declared = await declaring as { created: boolean };
  assert.deepEqual(await nacking, { outcome: 'dead-lettered', reason: 'rejected' });
  assert.equal(declared.created, true, 'made by the declare');
  assert.equal(broker.getQueue('dlq').settings.maxAttempts, asked.maxAttempts);
  assert.equal(broker.getQueue('dlq').stats.total, 1);

  await restart();
  assert.equal(broker.getQueue('dlq').settings.maxAttempts, asked.maxAttempts);
  assert.equal(broker.getQueue('dlq').stats.total, 1);
  assert.equal(broker.getQueue('work').stats.total, 0);
  await deleteAll();
  assert.equal(hotUsed(), 0);
});

it('a nack during the delete, then a declare of that queue as FIFO: the declare answers, whoever made it', async () => {
  const leased = await oneLeasedFromWork();

  const { deleting } = await startDelete('dlq');
  const nacking = settled(broker.nack('work', leased.receipt, { requeue: false }));
  const declaring = settled(broker.createQueue('dlq', { fifo: true }));
  disk.release();

  assert.equal(await deleting, undefined);
  assert.deepEqual(await nacking, { outcome: 'dead-lettered', reason: 'rejected' });
  const declared = await declaring;
  // Either the declare came first (a FIFO queue, the dead letter in it) or
  // the dead letter made a plain one and the declare is refused; it must
  // answer and the two must agree after a restart.
  const fifo = broker.getQueue('dlq').settings.fifo;
  if (typeof declared === 'object') assert.equal(fifo, true);
  else assert.equal(declared, 'QUEUE_EXISTS');
  assert.equal(broker.getQueue('dlq').stats.total, 1);
  await restart();
  assert.equal(broker.getQueue('dlq').settings.fifo, fifo);
  assert.equal(broker.getQueue('dlq').stats.total, 1);
});

it('many dead letters held, then the delete fails: all in the queue left, counted once', async () => {
  await broker.close();
  const failing = failNextToFinish(disk.io);
  broker = await openBroker(dir.path, { ...options, storeIo: failing.io });
  await broker.createQueue('dlq', {});
  await broker.createQueue('work', { deadLetter: 'dlq' });
  const count = 20;
  await broker.publish('work', Array.from({ length: count }, (_, i) => ({ body: text(`m${i}`) })));
  const leased = await broker.receive('work', { max: count, waitMs: 0 });
  assert.equal(leased.length, count);

  const { deleting } = await startDelete('dlq');
  const nacks = leased.map((message) =>
    settled(broker.nack('work', message.receipt, { requeue: false })));
  await new Promise((resolve) => setTimeout(resolve, 50));
  failing.arm();
  disk.release();

  assert.equal(await deleting, 'STORE_UNAVAILABLE');
  for (const nack of nacks) {
    assert.deepEqual(await nack, { outcome: 'dead-lettered', reason: 'rejected' });
  }
  assert.equal(broker.getQueue('dlq').stats.total, count);
  assert.equal(broker.getQueue('work').stats.total, 0);
  assert.equal(broker.getQueue('work').stats.deadLettered, count);
  await restart();
  assert.equal(broker.getQueue('dlq').stats.total, count);
  assert.equal(broker.getQueue('work').stats.total, 0);
  await deleteAll();
  assert.equal(hotUsed(), 0);
});

it('its own queue deleted while it waits, then a clean restart: the dead letter stays in the queue made anew', async () => {
  await broker.createQueue('work', { deadLetter: 'dlq' });
  await broker.createQueue('dlq', {});
  await broker.publish('work', [{ body: text('dies') }]);
  const leased = await leaseOne('work');

  const { deleting } = await startDelete('dlq');
  const nacking = settled(broker.nack('work', leased.receipt, { requeue: false }));
  const deletingWork = settled(broker.deleteQueue('work'));
  await until('both deletes to wait', () => disk.syncsWaiting >= 2);
  disk.release();
  assert.deepEqual(await Promise.all([deleting, deletingWork]), [undefined, undefined]);
  assert.deepEqual(await nacking, { outcome: 'dead-lettered', reason: 'rejected' });
  assert.equal(broker.getQueue('dlq').stats.total, 1);
  // Its own queue's figures went with it: the death brings none back.
  assert.equal(observationsOf(broker).deaths.has('work'), false);
  await restart();
  assert.equal(broker.hasQueue('work'), false);
  assert.equal(broker.getQueue('dlq').stats.total, 1);
  await deleteAll();
  assert.equal(hotUsed(), 0);
});

it('the broker closed while dead letters are held: close ends, they are not counted, and both are still their own queue\'s after a restart', async () => {
  await broker.createQueue('dlq', {});
  await broker.createQueue('work', { deadLetter: 'dlq' });
  await broker.publish('work', [{ body: text('a') }, { body: text('b') }]);
  const leased = await broker.receive('work', { max: 2, waitMs: 0 });

  const { deleting } = await startDelete('dlq');
  const nacks = leased.map((message) =>
    settled(broker.nack('work', message.receipt, { requeue: false })));
  await new Promise((resolve) => setTimeout(resolve, 20));
  const closing = broker.close();
  disk.release();
  let closed = false;
  void closing.then(() => (closed = true));
  await until('close to end', () => closed, 5_000);
  // The delete lands; the dead letters, written after it, find the store
  // closed: their nacks fail, and their messages are still "work"'s.
  assert.deepEqual(await Promise.all([deleting, ...nacks]),
    [undefined, 'STORE_UNAVAILABLE', 'STORE_UNAVAILABLE']);
  // Not dead-lettered, so not counted as such.
  assert.deepEqual(deathsOf('work'), { deaths: {}, deadLettered: 0 });

  broker = await openBroker(dir.path, { clock: options.clock, sync: true });
  assert.equal(broker.getQueue('work').stats.total, 2, 'still its own queue\'s');
});

it('its own queue deleted while it waits, then its dead-letter queue\'s delete fails: it goes into that queue, and stays after a restart', async () => {
  await broker.close();
  const failing = failNextToFinish(disk.io);
  broker = await openBroker(dir.path, { ...options, storeIo: failing.io });
  await broker.createQueue('dlq', {});
  await broker.publish('dlq', [{ body: text('old') }]);
  await broker.createQueue('work', { deadLetter: 'dlq' });
  await broker.publish('work', [{ body: text('dies') }]);
  const leased = await leaseOne('work');

  const { deleting } = await startDelete('dlq');
  const nacking = settled(broker.nack('work', leased.receipt, { requeue: false }));
  await new Promise((resolve) => setTimeout(resolve, 20));
  // The delete of "dlq" fails; that of "work", written after it, lands.
  failing.arm();
  disk.release();
  assert.equal(await deleting, 'STORE_UNAVAILABLE');
  assert.equal(await settled(broker.deleteQueue('work')), undefined);
  assert.deepEqual(await nacking, { outcome: 'dead-lettered', reason: 'rejected' });
  const bodies = () => broker.peek('dlq', { limit: 10, offset: 0 }).map((m) => String(m.body));
  assert.deepEqual(bodies(), ['old', 'dies']);
  await restart();
  assert.equal(broker.hasQueue('work'), false);
  assert.deepEqual(bodies(), ['old', 'dies']);
  await deleteAll();
  assert.equal(hotUsed(), 0);
});

it('a held dead letter is counted, in the deaths and in deadLettered, once written', async () => {
  const leased = await oneLeasedFromWork();

  const { deleting } = await startDelete('dlq');
  const nacking = settled(broker.nack('work', leased.receipt, { requeue: false }));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(deathsOf('work'), { deaths: {}, deadLettered: 0 }, 'while held');
  disk.release();

  assert.equal(await deleting, undefined);
  assert.deepEqual(await nacking, { outcome: 'dead-lettered', reason: 'rejected' });
  assert.deepEqual(deathsOf('work'), { deaths: { rejected: 1 }, deadLettered: 1 });
});

it('a refused publish held for its dead-letter queue\'s delete is counted once written (reject-publish-dlx)', async () => {
  await broker.createQueue('dlq', {});
  await broker.createQueue('work', { deadLetter: 'dlq', maxLength: 1, overflow: 'reject-publish-dlx' });
  await broker.publish('work', [{ body: text('fits') }]);

  const { deleting } = await startDelete('dlq');
  const refused = settled(broker.publish('work', [{ body: text('refused') }]));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(deathsOf('work'), { deaths: {}, deadLettered: 0 }, 'while held');
  disk.release();
  assert.equal(await deleting, undefined);
  assert.equal(await refused, 'QUEUE_FULL');

  await until('the refused one in the dead-letter queue', () =>
    broker.hasQueue('dlq') && broker.getQueue('dlq').stats.total === 1);
  await until('it counted', () => deathsOf('work').deadLettered === 1);
  assert.deepEqual(deathsOf('work'), { deaths: { overflow: 1 }, deadLettered: 1 });
});
