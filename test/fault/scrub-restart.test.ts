// A flipped bit in a segment the checkpoint of a clean stop covers, seen
// from the queues: the start does not read that segment, the scrub after
// it does. The message the damage hit is taken out of its queue and
// settled (counted as dropped, never delivered), every other one is
// delivered whole, and the next start does not bring it back.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';

import pino from 'pino';

import type { Broker } from '../../src/broker/broker.js';
import { listSegments, readSegment } from '../../src/storage/segment-file.js';
import {
  ManualClock, failNextToFinish, heldDisk, openBroker, tempDir, text, until,
} from '../helpers.js';
import { bodyOf, fillSmallSegments } from './small-segments.js';


async function scrubbed(broker: Broker, scrubs = 1): Promise<void> {
  for (let i = 0; i < 500 && broker.health().store.scrubsCompleted < scrubs; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(broker.health().store.scrubsCompleted, scrubs, 'the scrub did not end');
}

/** The file offset of the `published` frame of message `id` in segment `path`. */
async function frameOf(path: string, id: string): Promise<number | undefined> {
  let found: number | undefined;
  await readSegment(path, (record, _frameBytes, offset) => {
    if (record.type === 'published' && record.id === id) found = offset;
  });
  return found;
}

function flip(path: string, at: number): void {
  const bytes = readFileSync(path);
  bytes[at] ^= 0x04;
  writeFileSync(path, bytes);
}

// Every message delivered, then released again.
async function receiveAll(broker: Broker): Promise<Map<string, string>> {
  const bodies = new Map<string, string>();
  const receipts: string[] = [];
  for (;;) {
    const batch = await broker.receive('q', { max: 100, waitMs: 0 });
    if (batch.length === 0) break;
    for (const message of batch) {
      bodies.set(message.id, message.body.toString());
      receipts.push(message.receipt);
    }
  }
  broker.release('q', receipts);
  return bodies;
}

/** A logger whose entries the test reads back, parsed. */
function capturedLogger() {
  const entries: Array<{ level: number; msg: string; [key: string]: unknown }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => entries.push(JSON.parse(line)) });
  return { logger, entries };
}

it('a flipped bit under the checkpoint costs its message, reported, never delivered', async () => {
  const dir = tempDir('usher-scrub-');
  try {
    await fillSmallSegments(dir.path);
    const segments = await listSegments(join(dir.path, 'log'));
    const target = segments[2].path;
    let victim: { seq: number; offset: number } | undefined;
    await readSegment(target, (record, _frameBytes, offset) => {
      if (record.type === 'published' && victim === undefined) victim = { seq: record.seq, offset };
    });
    assert.ok(victim !== undefined);
    const bytes = readFileSync(target);
    bytes[victim.offset + 60] ^= 0x04;
    writeFileSync(target, bytes);

    const { logger, entries } = capturedLogger();
    let broker = await openBroker(dir.path, { logger });
    try {
      assert.equal(broker.health().store.openedFromCheckpoint, 1);
      await scrubbed(broker);
      const lost = entries.find((e) => e.msg === 'live messages lost to damage in the log');
      assert.deepEqual(lost?.seqs, [victim.seq]);
      assert.equal(lost?.queue, 'q');
      const { store } = broker.health();
      assert.equal(store.corruptRegions, 1);
      assert.equal(store.scrubDamagedMessages, 1);
      const { stats } = broker.getQueue('q');
      assert.equal(stats.total, 299);
      assert.equal(stats.dropped, 1);

      const bodies = await receiveAll(broker);
      assert.equal(bodies.size, 299);
      for (const [id, body] of bodies) assert.equal(body, bodyOf(Number(id.slice(2))));
    } finally {
      await broker.close();
    }

    // Settled: the next start neither brings it back nor counts it lost again.
    broker = await openBroker(dir.path);
    try {
      await scrubbed(broker);
      assert.equal(broker.health().store.scrubDamagedMessages, 0);
      assert.equal(broker.health().store.corruptRegions, 1, 'the file is still damaged');
      assert.equal(broker.getQueue('q').stats.total, 299);
    } finally {
      await broker.close();
    }
  } finally {
    dir.remove();
  }
});

it('a message held in memory when its frame is damaged is logged again, not lost', async () => {
  const dir = tempDir('usher-scrub-');
  try {
    await fillSmallSegments(dir.path);
    const { logger, entries } = capturedLogger();
    let broker = await openBroker(dir.path, { logger });
    try {
      await scrubbed(broker);
      // Read into memory (a page of the cold backlog), then its frame rots.
      const [first] = await broker.receive('q', { max: 1, waitMs: 0 });
      assert.equal(first.id, 'm-0');
      const oldest = (await listSegments(join(dir.path, 'log')))[0].path;
      const offset = await frameOf(oldest, 'm-0');
      assert.ok(offset !== undefined);
      flip(oldest, offset + 60);

      assert.equal(broker.scrub(), true);
      await scrubbed(broker, 2);
      assert.equal(broker.health().store.scrubDamagedMessages, 1);
      assert.equal(broker.health().store.corruptRegions, 1);
      assert.equal(broker.getQueue('q').stats.dropped, 0);
      // Not reported lost: an operator would tell its producer it was.
      const said = entries.map((e) => e.msg);
      assert.ok(!said.includes('live messages lost to damage in the log'), said.join('; '));
      assert.ok(said.includes('messages with damaged log frames logged again from memory: not lost'));
      broker.release('q', [first.receipt]);
    } finally {
      await broker.close();
    }

    broker = await openBroker(dir.path);
    try {
      await scrubbed(broker);
      assert.equal(broker.health().store.scrubDamagedMessages, 0);
      const bodies = await receiveAll(broker);
      assert.equal(bodies.size, 300);
      assert.equal(bodies.get('m-0'), bodyOf(0));
    } finally {
      await broker.close();
    }
  } finally {
    dir.remove();
  }
});

// Found while the delete of its queue waits for its sync: logged again
// then, its record would land after the `queue-deleted` one and make it
// live again. It waits for the delete: gone with the queue, or logged
// again once the delete fails.
for (const delete_ of ['lands', 'fails'] as const) {
  it(`a damaged message of a queue being deleted waits for the delete (it ${delete_})`, async () => {
    const dir = tempDir('usher-scrub-');
    const disk = heldDisk();
    const failing = failNextToFinish(disk.io);
    try {
      await fillSmallSegments(dir.path);
      const { logger, entries } = capturedLogger();
      let broker = await openBroker(dir.path, { logger, storeIo: failing.io, sync: true });
      try {
        await scrubbed(broker);
        const [first] = await broker.receive('q', { max: 1, waitMs: 0 });
        const oldest = (await listSegments(join(dir.path, 'log')))[0].path;
        const offset = await frameOf(oldest, first.id);
        assert.ok(offset !== undefined);
        flip(oldest, offset + 60);

        disk.hold();
        const deleting = broker.deleteQueue('q').then(() => 'deleted', (err) => err.code);
        await until('the delete to wait for its sync', () => disk.syncsWaiting === 1);
        assert.equal(broker.scrub(), true);
        await scrubbed(broker, 2);
        assert.equal(broker.health().store.scrubDamagedMessages, 1);
        if (delete_ === 'fails') failing.arm();
        disk.release();
        assert.equal(await deleting, delete_ === 'lands' ? 'deleted' : 'STORE_UNAVAILABLE');
        const again = 'messages with damaged log frames logged again from memory: not lost';
        if (delete_ === 'fails') {
          await until('the repair', () => entries.some((e) => e.msg === again));
          broker.release('q', [first.receipt]);
        }
        const said = entries.map((e) => e.msg);
        assert.ok(!said.includes('live messages lost to damage in the log'), said.join('; '));
        assert.equal(said.includes(again), delete_ === 'fails', said.join('; '));
      } finally {
        disk.release();
        await broker.close();
      }

      broker = await openBroker(dir.path);
      try {
        if (delete_ === 'fails') {
          await scrubbed(broker);
          assert.equal(broker.health().store.scrubDamagedMessages, 0);
          const bodies = await receiveAll(broker);
          assert.equal(bodies.size, 300);
          assert.equal(bodies.get('m-0'), bodyOf(0));
          return;
        }
        assert.equal(broker.hasQueue('q'), false);
        await broker.createQueue('q', {});
      } finally {
        await broker.close();
      }
      broker = await openBroker(dir.path);
      try {
        assert.equal(broker.getQueue('q').stats.total, 0);
      } finally {
        await broker.close();
      }
    } finally {
      dir.remove();
    }
  });
}

// A scrub that drops a cold message wakes its queue, and a subscriber
// whose credit grew (AMQP wakes it on the next turn) may then take the
// queue's head: one repaired in the same scrub, its TTL past (the due
// timer not yet run), is dead-lettered at once. The repair's record must
// come before the dead letter's, or a restart puts it back in its queue.
it('a repaired message the wake-up dead-letters stays dead-lettered after a restart', async () => {
  const dir = tempDir('usher-scrub-');
  const clock = new ManualClock();
  const options = { clock: clock.read, segmentBytes: 16 * 1024 };
  let broker = await openBroker(dir.path, options);
  try {
    await broker.createQueue('dlq', {});
    await broker.createQueue('q', { deadLetter: 'dlq' });
    for (let i = 0; i < 300; i += 10) {
      await broker.publish('q', Array.from({ length: 10 }, (_, j) => ({
        id: `m-${i + j}`,
        body: text(bodyOf(i + j)),
        ...(i + j === 0 ? { ttlMs: 60_000, priority: 9 } : {}),
      })));
    }
    await broker.close();

    broker = await openBroker(dir.path, options);
    await scrubbed(broker);
    // m-0 read into memory alone (the only one of its priority) and back
    // in the queue; m-1, in the same segment, stays cold.
    const [first] = await broker.receive('q', { max: 1, waitMs: 0 });
    assert.equal(first.id, 'm-0');
    broker.release('q', [first.receipt]);
    let credit = 0;
    const take = () => { credit = 0; };
    broker.subscribe('q', { credit: () => credit, leaseMs: 30_000, deliver: take });

    // Both in one segment: a scrub reports a segment's damage at once.
    const oldest = (await listSegments(join(dir.path, 'log')))[0].path;
    for (const id of ['m-0', 'm-1']) {
      const offset = await frameOf(oldest, id);
      assert.ok(offset !== undefined, id);
      flip(oldest, offset + 60);
    }
    clock.advance(120_000);
    credit = 1; // grown, its wake not yet come
    assert.equal(broker.scrub(), true);
    await scrubbed(broker, 2);
    assert.equal(broker.health().store.scrubDamagedMessages, 2);
    assert.equal(broker.getQueue('q').stats.dropped, 1, 'm-1 lost');
    assert.deepEqual(broker.peek('dlq', { limit: 10, offset: 0 }).map((m) => m.id), ['m-0']);
    await broker.close();

    broker = await openBroker(dir.path, options);
    assert.deepEqual(broker.peek('dlq', { limit: 10, offset: 0 }).map((m) => m.id), ['m-0']);
    assert.equal(broker.getQueue('q').stats.total, 298);
    assert.notEqual(broker.peek('q', { limit: 1, offset: 0 })[0].id, 'm-0');
  } finally {
    await broker.close();
    dir.remove();
  }
});
