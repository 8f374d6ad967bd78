// A full disk for real (CASES.md C17): the broker's data folder on a small
// tmpfs. With no floor the log hits ENOSPC: the publishes in flight are
// refused, nothing confirmed is lost, nothing is corrupted, and both the
// running broker and a restarted one carry on once space is back. With a
// floor, publishes are refused first, while acks, retries, dead-letters and
// redrives go on and acks give the space back.

import assert from 'node:assert/strict';
import { statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import { UsherError } from '../../src/errors.js';
import { openBroker, text } from '../helpers.js';
import { withTmpfs } from './tmpfs.js';

const MiB = 1024 * 1024;
const body = (id: string) => text(`${id}:${'x'.repeat(1000)}`);

function freeBytes(dir: string): number {
  const stats = statfsSync(dir);
  return stats.bavail * stats.bsize;
}

async function allIds(broker: Broker, queue: string): Promise<string[]> {
  const ids: string[] = [];
  for (let offset = 0; ; offset += 1000) {
    const page = broker.peek(queue, { limit: 1000, offset });
    ids.push(...page.map((message) => message.id));
    if (page.length < 1000) return ids;
  }
}

it('a real ENOSPC refuses the publishes in flight and corrupts nothing (C17)', async (t) => {
  const result = await withTmpfs(4 * MiB, async (mount) => {
    const dataDir = join(mount, 'data');
    const filler = join(mount, 'filler');
    writeFileSync(filler, Buffer.alloc(MiB));
    let broker = await openBroker(dataDir, { sync: true, segmentBytes: 256 * 1024, diskFloorBytes: 0 });
    try {
      await broker.createQueue('q', {});
      const confirmed: string[] = [];
      const refused: unknown[] = [];
      let next = 0;

      // Four publishers, so that several batches are in flight when the
      // disk fills; they stop after a few refusals each.
      const publisher = async () => {
        let failures = 0;
        while (failures < 5 && next < 20_000) {
          const ids = Array.from({ length: 20 }, () => `m-${next++}`);
          try {
            await broker.publish('q', ids.map((id) => ({ id, body: body(id) })));
            confirmed.push(...ids);
          } catch (err) {
            refused.push(err);
            failures++;
          }
        }
      };
      await Promise.all([publisher(), publisher(), publisher(), publisher()]);

      assert.ok(refused.length > 0, 'the disk never filled');
      for (const err of refused) {
        assert.ok(err instanceof UsherError, String(err));
        assert.equal(err.code, 'STORE_UNAVAILABLE');
        assert.equal(err.status, 503);
      }
      assert.equal(broker.health().status, 'degraded');
      assert.equal(broker.health().store.stopped, 0, 'every failed batch was cut back');
      assert.deepEqual((await allIds(broker, 'q')).length, confirmed.length);

      // Space comes back: the same broker takes publishes and acks again.
      unlinkSync(filler);
      await broker.publish('q', [{ id: 'after', body: body('after') }]);
      confirmed.push('after');
      const first = await broker.receive('q', { max: 100, waitMs: 0 });
      await broker.ack('q', first.map((message) => message.receipt));
      const acked = new Set(first.map((message) => message.id));

      await broker.close();
      broker = await openBroker(dataDir, { sync: true, segmentBytes: 256 * 1024, diskFloorBytes: 0 });
      const store = broker.health().store;
      assert.equal(store.corruptTails, 0, 'a failed batch was left in the log');
      assert.equal(store.corruptRegions, 0);
      const stored = await allIds(broker, 'q');
      assert.deepEqual(stored, confirmed.filter((id) => !acked.has(id)));
      t.diagnostic(`${confirmed.length} confirmed, ${refused.length} publishes refused with ENOSPC`);
    } finally {
      await broker.close();
    }
  });
  if (result.skipped) t.skip(result.skipped);
});

it('below the floor on a real disk: acks free space, moves keep messages (C17)', async (t) => {
  const result = await withTmpfs(8 * MiB, async (mount) => {
    const dataDir = join(mount, 'data');
    // 3 MiB filler + 3 MiB floor: about 2 MiB for the log before refusals.
    writeFileSync(join(mount, 'filler'), Buffer.alloc(3 * MiB));
    const broker = await openBroker(dataDir, {
      sync: true,
      segmentBytes: 128 * 1024,
      diskFloorBytes: 3 * MiB,
    });
    try {
      await broker.createQueue('q', { deadLetter: 'q.dlq', backoff: { initialMs: 0, jitter: 0 } });

      // Paced, so the once-a-second free-space check sees the floor before
      // the disk is really full.
      let next = 0;
      let refusal: unknown;
      for (let i = 0; i < 2000 && refusal === undefined; i++) {
        const ids = Array.from({ length: 20 }, () => `m-${next++}`);
        try {
          await broker.publish('q', ids.map((id) => ({ id, body: body(id) })));
        } catch (err) {
          refusal = err;
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.ok(refusal instanceof UsherError, `never refused: ${String(refusal)}`);
      assert.equal(refusal.code, 'DISK_FULL');
      const total = (await allIds(broker, 'q')).length;
      const freeAtFloor = freeBytes(mount);

      // Retry, dead-letter and redrive go on, and keep every message.
      const [retried, dead] = await broker.receive('q', { max: 2, waitMs: 0 });
      await broker.nack('q', retried.receipt, {});
      await broker.nack('q', dead.receipt, { requeue: false });
      assert.deepEqual(await allIds(broker, 'q.dlq'), [dead.id]);
      assert.deepEqual(await broker.redrive('q.dlq', {}), { moved: 1 });
      assert.equal((await allIds(broker, 'q')).length, total, 'a moved message was dropped');

      // Acking the oldest three quarters frees their segments. (Half was
      // too close: the once-a-second check lets the log run past the
      // floor before it refuses, and freeing half of it could leave the
      // disk a few KiB short of the floor still.)
      const acks: string[] = [];
      while (acks.length < Math.floor((total * 3) / 4)) {
        const max = Math.min(1000, Math.floor((total * 3) / 4) - acks.length);
        const page = await broker.receive('q', { max, waitMs: 0 });
        if (page.length === 0) break;
        acks.push(...page.map((message) => message.receipt));
      }
      assert.ok((await broker.ack('q', acks)).every(Boolean));
      // Copying the few pinning messages forward and deleting segments
      // happens after the ack batch lands.
      let freed = 0;
      for (let i = 0; i < 30 && freed < 512 * 1024; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        freed = freeBytes(mount) - freeAtFloor;
      }
      assert.ok(freed >= 512 * 1024, `acks freed ${freed} bytes`);

      // Within a check or two, publishes are taken again.
      let accepted = false;
      for (let i = 0; i < 30 && !accepted; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        accepted = await broker.publish('q', [{ body: body('late') }]).then(() => true, () => false);
      }
      assert.ok(accepted, `publishes still refused after space was freed: ${freeBytes(mount)} B free, ${freeAtFloor} at the floor of ${3 * MiB}`);
    } finally {
      await broker.close();
    }
  });
  if (result.skipped) t.skip(result.skipped);
});
