// Nothing moves into a queue while its delete is written (queues.ts):
// a redrive into it is refused, and one back to where dead letters died
// leaves those of a queue being deleted where they are. Each is checked
// after a crash that follows the delete's write, where a record written
// into the queue after its `queue-deleted` record (settled, if at all,
// by a write after that) stayed live, and a queue made again under the
// name took it at the next start.

import assert from 'node:assert/strict';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';

import type { Broker, BrokerOptions } from '../../src/broker/broker.js';
import type { StoreIo } from '../../src/storage/io.js';
import { ManualClock, heldDisk, openBroker, tempDir, text, until } from '../helpers.js';

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
 * sync: a record it writes then is in the log before the crash.
 */
async function writtenOrAnswered(asked: Promise<unknown>): Promise<void> {
  let answered = false;
  void asked.then(() => (answered = true));
  await until('the request to be written or answered', () => answered || disk.syncsWaiting > 1);
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
