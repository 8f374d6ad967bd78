// Nothing moves into a queue while its delete is written (queues.ts):
// a redrive into it is refused, a dead letter routed there is dropped as
// one routed to no queue, one its `deadLetter` setting sends there waits
// for the delete and goes where one for a missing queue goes (a queue
// made anew on demand), and a message nacked with a reason in it is not
// logged back into it. Each is checked after a crash that follows the
// delete's write, where a record written into the queue after its
// `queue-deleted` record (settled, if at all, by a write after that)
// stayed live, and a queue made again under the name took it at the
// next start. Last, messages an ack or purge that failed meanwhile put
// back: the delete's `queue-deleted` record ends them.

import assert from 'node:assert/strict';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';

import type { Broker, BrokerOptions } from '../../src/broker/broker.js';
import type { DeadLetterRouter } from '../../src/broker/dead-letter.js';
import type { StoreIo } from '../../src/storage/io.js';
import {
  ManualClock, failNextToFinish, heldDisk, openBroker, tempDir, text, until,
} from '../helpers.js';

let dirs: ReturnType<typeof tempDir>[];
let disk: ReturnType<typeof heldDisk>;
let gate: ReturnType<typeof writeGate>;
let broker: Broker;
let options: Partial<BrokerOptions>;

/**
 * Writes that wait, unwritten, while the gate is closed: what the log
 * holds then is what a crash at that moment leaves.
 */
function writeGate(io: StoreIo) {
  let waiting: Array<() => void> = [];
  const gate = {
    closed: false,
    get writesWaiting() {
      return waiting.length;
    },
    open() {
      gate.closed = false;
      for (const wake of waiting.splice(0)) wake();
    },
    io: {
      ...io,
      async writev(fd, buffers, position) {
        if (gate.closed) await new Promise<void>((resolve) => waiting.push(resolve));
        return io.writev(fd, buffers, position);
      },
    } satisfies StoreIo,
  };
  return gate;
}

beforeEach(async () => {
  dirs = [tempDir()];
  disk = heldDisk();
  gate = writeGate(disk.io);
  options = { clock: new ManualClock().read, sync: true, storeIo: gate.io };
  broker = await openBroker(dirs[0].path, options);
});

afterEach(async () => {
  gate.open();
  disk.release();
  await broker.close();
  for (const dir of dirs) dir.remove();
});

const settled = <T>(promise: Promise<T>) =>
  promise.then((value) => value, (err: { code?: string }) => err.code);

/**
 * Lets the delete's write land with every later write held back, and
 * copies the data folder as a crash then would leave it: once the delete
 * has answered, or once a write after it (one that would settle what
 * came into the queue meanwhile) waits.
 */
async function crashAfter(deleting: Promise<unknown>): Promise<string> {
  let answered = false;
  void deleting.then(() => (answered = true));
  gate.closed = true;
  disk.release();
  await until('the delete to land', () => answered || gate.writesWaiting > 0);

  const image = tempDir();
  dirs.push(image);
  cpSync(dirs[0].path, image.path, { recursive: true });
  // Its owner is this process, which is alive: a crash leaves no owner.
  rmSync(join(image.path, 'usher.lock'));
  gate.open();
  return image.path;
}

/**
 * Waits until `asked` has answered or has written and waits for its
 * sync: a record it writes then is in the log before the crash. One that
 * waits for the delete does neither: `heldMs` bounds the wait for it.
 */
async function writtenOrAnswered(asked: Promise<unknown>, heldMs?: number): Promise<void> {
  let answered = false;
  void asked.then(() => (answered = true));
  const since = Date.now();
  await until('the request to be written or answered', () =>
    answered || disk.syncsWaiting > 1 || (heldMs !== undefined && Date.now() - since > heldMs));
}

/** Opens a crash image; the broker it gives is closed after the test. */
async function openImage(path: string): Promise<Broker> {
  await broker.close();
  broker = await openBroker(path, { clock: options.clock, sync: true });
  return broker;
}

/** What a queue made again under `name` holds after a restart. */
async function madeAgainAfterRestart(path: string, name: string): Promise<number> {
  assert.equal(broker.hasQueue(name), false, `"${name}" stayed deleted`);
  await broker.createQueue(name, {});
  await broker.close();
  broker = await openBroker(path, { clock: options.clock, sync: true });
  return broker.getQueue(name).stats.total;
}

/** Starts deleting `name`; answers once its records wait for their sync. */
async function startDelete(name: string): Promise<{ deleting: Promise<unknown> }> {
  disk.hold();
  const deleting = settled(broker.deleteQueue(name));
  await until('the delete to wait for its sync', () => disk.syncsWaiting === 1);
  return { deleting };
}

it('a dead letter for a queue being deleted goes to one made anew after it', async () => {
  await broker.createQueue('dlq', {});
  await broker.publish('dlq', [{ body: text('old') }]);
  await broker.createQueue('work', { deadLetter: 'dlq' });
  await broker.publish('work', [{ body: text('dies') }]);
  const [leased] = await broker.receive('work', { max: 1, waitMs: 0 });

  const { deleting } = await startDelete('dlq');
  const nacking = settled(broker.nack('work', leased.receipt, { requeue: false }));
  await writtenOrAnswered(nacking, 200);
  const image = await crashAfter(deleting);

  assert.equal(await deleting, undefined);
  assert.deepEqual(await nacking, { outcome: 'dead-lettered', reason: 'rejected' });
  // As for a dead-letter queue that is missing: made on demand, and the
  // dead letter in it, its old message gone with the old queue.
  const dlq = broker.getQueue('dlq');
  assert.equal(dlq.settings.maxAttempts, 0, 'made as a dead-letter queue');
  assert.equal(dlq.stats.total, 1);
  const [dead] = broker.peek('dlq', { limit: 10, offset: 0 });
  assert.equal(String(dead.body), 'dies');
  assert.equal(dead.headers['x-usher-death-queue'], 'work');
  assert.equal(broker.getQueue('work').stats.total, 0);

  // The crash came before the dead letter was written: it is back where
  // it died, and nothing of it is in the queue deleted.
  await openImage(image);
  assert.equal(broker.getQueue('work').stats.total, 1, 'the nack was never logged');
  assert.equal(await madeAgainAfterRestart(image, 'dlq'), 0);
});

it('a dead letter routed to a queue being deleted is dropped, as one routed nowhere', async () => {
  await broker.createQueue('dlq', {});
  await broker.createQueue('work', {});
  await broker.publish('work', [{ body: text('dies') }]);
  const [leased] = await broker.receive('work', { max: 1, waitMs: 0 });
  // An AMQP x-dead-letter-exchange bound to "dlq", as the adapter routes it.
  const router: DeadLetterRouter = {
    route: (queue, _reason, headers) =>
      (queue === 'work' ? { queues: ['dlq'], headers } : undefined),
    sourcesOf: (queue) => (queue === 'dlq' ? ['work'] : []),
    decidesFor: (queue) => queue === 'work',
  };
  broker.routeDeadLetters(router);

  const { deleting } = await startDelete('dlq');
  const nacking = settled(broker.nack('work', leased.receipt, { requeue: false }));
  await writtenOrAnswered(nacking);
  const image = await crashAfter(deleting);

  assert.equal(await deleting, undefined);
  assert.deepEqual(await nacking, { outcome: 'dropped', reason: 'rejected' });
  assert.equal(broker.hasQueue('dlq'), false);
  assert.equal(broker.getQueue('work').stats.dropped, 1);

  await openImage(image);
  assert.equal(broker.getQueue('work').stats.total, 0, 'dropped, and settled');
  assert.equal(await madeAgainAfterRestart(image, 'dlq'), 0);
});

it('a redrive into a queue being deleted is refused and moves nothing', async () => {
  await broker.createQueue('target', {});
  await broker.createQueue('parked', {});
  await broker.publish('parked', [{ body: text('waits') }]);

  const { deleting } = await startDelete('target');
  const redriving = settled(broker.redrive('parked', { to: 'target' }));
  await writtenOrAnswered(redriving);
  const image = await crashAfter(deleting);

  assert.equal(await deleting, undefined);
  assert.equal(await redriving, 'QUEUE_NOT_FOUND');
  assert.equal(broker.getQueue('parked').stats.total, 1);

  await openImage(image);
  assert.equal(broker.getQueue('parked').stats.total, 1);
  assert.equal(await madeAgainAfterRestart(image, 'target'), 0);
});

it('a redrive leaves where they are the dead letters of a queue being deleted', async () => {
  await broker.createQueue('work', { deadLetter: 'dlq' });
  await broker.createQueue('other', { deadLetter: 'dlq' });
  for (const queue of ['work', 'other']) {
    await broker.publish(queue, [{ body: text(queue) }]);
    const [leased] = await broker.receive(queue, { max: 1, waitMs: 0 });
    await broker.nack(queue, leased.receipt, { requeue: false });
  }

  const { deleting } = await startDelete('work');
  // Without `to` each goes back where it died: "work" is as if gone.
  const redriving = settled(broker.redrive('dlq', {}));
  await writtenOrAnswered(redriving);
  const image = await crashAfter(deleting);

  assert.equal(await deleting, undefined);
  assert.deepEqual(await redriving, { moved: 1 });
  assert.equal(broker.getQueue('other').stats.total, 1);
  const [left] = broker.peek('dlq', { limit: 10, offset: 0 });
  assert.equal(String(left.body), 'work');

  await openImage(image);
  assert.equal(await madeAgainAfterRestart(image, 'work'), 0);
});

it('a message nacked with a reason while its queue is deleted is not logged back', async () => {
  await broker.createQueue('q', {});
  await broker.publish('q', [{ body: text('leased') }]);
  const [leased] = await broker.receive('q', { max: 1, waitMs: 0 });

  const { deleting } = await startDelete('q');
  // Requeued with a reason: its new headers would be logged as a whole
  // record of it, after the delete's `settled` one.
  const nacking = settled(broker.nack('q', leased.receipt, { requeue: true, reason: 'later' }));
  await writtenOrAnswered(nacking);
  const image = await crashAfter(deleting);

  assert.equal(await deleting, undefined);
  assert.deepEqual(await nacking, { outcome: 'retried' });

  await openImage(image);
  assert.equal(await madeAgainAfterRestart(image, 'q'), 0);
});

it('a dead letter waiting for its dead-letter queue goes with its own queue deleted', async () => {
  await broker.createQueue('work', { deadLetter: 'dlq' });
  await broker.createQueue('dlq', {});
  await broker.publish('work', [{ body: text('dies') }]);
  const [leased] = await broker.receive('work', { max: 1, waitMs: 0 });

  const { deleting } = await startDelete('dlq');
  const nacking = settled(broker.nack('work', leased.receipt, { requeue: false }));
  // Out of "work" in memory, still its in the log: the delete of "work"
  // settles it, or a crash before its dead letter is written left it to
  // a queue made again under that name.
  const deletingWork = settled(broker.deleteQueue('work'));
  await until('both deletes to wait for their syncs', () => disk.syncsWaiting === 2);
  const image = await crashAfter(Promise.all([deleting, deletingWork]));

  assert.deepEqual(await Promise.all([deleting, deletingWork]), [undefined, undefined]);
  assert.deepEqual(await nacking, { outcome: 'dead-lettered', reason: 'rejected' });
  assert.equal(broker.getQueue('dlq').stats.total, 1, 'written once the deletes landed');

  await openImage(image);
  assert.equal(broker.hasQueue('dlq'), false);
  assert.equal(await madeAgainAfterRestart(image, 'work'), 0);
});

it('a dead letter waiting for a delete that fails goes into the queue left', async () => {
  await broker.close();
  // Fails the next write or sync to finish: the delete's, held until then.
  const failing = failNextToFinish(gate.io);
  options = { ...options, storeIo: failing.io };
  broker = await openBroker(dirs[0].path, options);
  await broker.createQueue('dlq', {});
  await broker.publish('dlq', [{ body: text('old') }]);
  await broker.createQueue('work', { deadLetter: 'dlq' });
  await broker.publish('work', [{ body: text('dies') }]);
  const [leased] = await broker.receive('work', { max: 1, waitMs: 0 });

  const { deleting } = await startDelete('dlq');
  const nacking = settled(broker.nack('work', leased.receipt, { requeue: false }));
  failing.arm();
  disk.release();

  assert.equal(await deleting, 'STORE_UNAVAILABLE');
  assert.deepEqual(await nacking, { outcome: 'dead-lettered', reason: 'rejected' });
  const bodies = broker.peek('dlq', { limit: 10, offset: 0 }).map((m) => String(m.body));
  assert.deepEqual(bodies, ['old', 'dies']);
  await broker.close();
  broker = await openBroker(dirs[0].path, { clock: options.clock, sync: true });
  assert.equal(broker.getQueue('dlq').stats.total, 2, 'both logged there');
});

it('overflow dead letters for a queue being deleted go to one made anew', async () => {
  await broker.createQueue('dlq', {});
  await broker.publish('dlq', [{ body: text('old') }]);
  await broker.createQueue('oldest', { deadLetter: 'dlq', maxLength: 1, overflow: 'drop-oldest' });
  await broker.createQueue('full', {
    deadLetter: 'dlq', maxLength: 1, overflow: 'reject-publish-dlx',
  });
  await broker.publish('oldest', [{ body: text('displaced') }]);
  await broker.publish('full', [{ body: text('kept') }]);

  const { deleting } = await startDelete('dlq');
  const displacing = settled(broker.publish('oldest', [{ body: text('newer') }]));
  const refused = settled(broker.publish('full', [{ body: text('refused') }]));
  disk.release();

  assert.equal(await deleting, undefined);
  assert.equal((await displacing as unknown[]).length, 1);
  assert.equal(await refused, 'QUEUE_FULL');
  await until('both dead letters to be written', () =>
    broker.hasQueue('dlq') && broker.getQueue('dlq').stats.total === 2);
  const bodies = broker.peek('dlq', { limit: 10, offset: 0 }).map((m) => String(m.body));
  assert.deepEqual(bodies.sort(), ['displaced', 'refused']);
  assert.equal(broker.getQueue('dlq').settings.maxAttempts, 0, 'made as a dead-letter queue');
});

// An ack or a purge whose write fails while the delete is written puts
// its messages back in the queue; the delete's write did not name them,
// and the write after it that settles them may never come. The delete's
// `queue-deleted` record ends them in the log (storage/ledger.ts).
for (const leaving of ['ack', 'purge'] as const) {
  it(`messages a failed ${leaving} puts back during the delete end with the queue`, async () => {
    await broker.close();
    const failing = failNextToFinish(gate.io);
    options = { ...options, storeIo: failing.io };
    broker = await openBroker(dirs[0].path, options);
    await broker.createQueue('q', {});
    await broker.publish('q', [{ body: text('a') }, { body: text('b') }]);
    const [leased] = await broker.receive('q', { max: 1, waitMs: 0 });
    // Any write after the delete's (one settling what came back) waits
    // unwritten: a crash then leaves the log as the delete did.
    broker.onQueueDeleted(() => {
      gate.closed = true;
    });

    disk.hold();
    const left = leaving === 'ack'
      ? settled(broker.ack('q', [leased.receipt]))
      : settled(broker.purgeQueue('q'));
    await until('its write to wait for its sync', () => disk.syncsWaiting === 1);
    const deleting = settled(broker.deleteQueue('q'));
    await until('the delete to wait for its sync too', () => disk.syncsWaiting === 2);
    failing.arm();
    disk.release();
    let answered = false;
    void deleting.then(() => (answered = true));
    await until('the delete to answer or a write after it to wait', () =>
      answered || gate.writesWaiting > 0);
    const image = tempDir();
    dirs.push(image);
    cpSync(dirs[0].path, image.path, { recursive: true });
    rmSync(join(image.path, 'usher.lock'));
    gate.open();

    assert.equal(await left, 'STORE_UNAVAILABLE');
    assert.equal(await deleting, undefined);
    assert.equal(broker.hasQueue('q'), false);

    await openImage(image.path);
    assert.equal(await madeAgainAfterRestart(image.path, 'q'), 0);
  });
}
