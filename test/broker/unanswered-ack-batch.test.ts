// An ack nobody hears an answer to (AckOptions synced: false, AMQP's
// basic.ack) is appended as unanswered: while a synced batch is in flight
// it is not written alone but waits to ride with the next batch
// (hasRoom, in-flight.ts). An ack someone awaits is written at once.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';

import { heldDisk, openBroker, tempDir, text, until } from '../helpers.js';

for (const synced of [false, true]) {
  test(`an ack with synced: ${synced} ${synced ? 'is written at once' : 'waits'} ` +
    'while a publish syncs', async () => {
    const dir = tempDir('usher-ack-batch-');
    const disk = heldDisk();
    const broker = await openBroker(dir.path, { sync: true, storeIo: disk.io });
    try {
      await broker.createQueue('q', {});
      await broker.publish('q', [{ id: 'a', body: text('a') }]);
      const [a] = await broker.receive('q', { max: 1, waitMs: 0 });

      disk.hold();
      const publishing = broker.publish('q', [{ id: 'b', body: text('b') }]);
      await until('a sync to wait', () => disk.syncsWaiting === 1);
      const writes = disk.writes;
      const acking = broker.ack('q', [a.receipt], { synced });
      await sleep(50);
      assert.equal(disk.writes, synced ? writes + 1 : writes);

      disk.release();
      await publishing;
      assert.deepEqual(await acking, [true]);
    } finally {
      disk.release();
      await broker.close();
      dir.remove();
    }
  });
}
