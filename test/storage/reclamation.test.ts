import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { test } from 'node:test';
import { nodeIo } from '../../src/storage/io.js';
import type { LogRecord, PublishedRecord } from '../../src/storage/records.js';
import {
  MessageModel,
  openStore,
  replayOf,
  settleRound,
  ticket,
  withTempDir,
} from './helpers.js';

const SEGMENT_BYTES = 16 * 1024;

const queues: LogRecord[] = [
  { type: 'queue-declared', name: 'tickets', settings: { maxAttempts: 3 } },
  { type: 'queue-declared', name: 'tickets.dlq', settings: {} },
  { type: 'queue-declared', name: 'scratch', settings: {} },
];

test('steady publish and settle traffic keeps segments bounded', () => {
  return withTempDir(async (dir) => {
    const { store } = await openStore(dir, { segmentBytes: SEGMENT_BYTES });
    await store.append(queues);
    await store.append([{ type: 'queue-deleted', name: 'scratch' }]);

    let previous: number[] = [];
    let mostSegments = 0;
    for (let i = 0; i < 300; i++) {
      previous = await settleRound(store, previous);
      mostSegments = Math.max(mostSegments, store.stats().segments);
    }

    // Closing waits for the housekeeping after the last batch.
    await store.close();
    const stats = store.stats();
    // About 1.2 MB went through 16 KiB segments: ~75 without deletion.
    assert.ok(stats.bytesWritten > 70 * SEGMENT_BYTES);
    // 3 on a quiet machine; dead segments are unlinked off the append
    // path, and on a busy one that fell 2 behind once (5). Without
    // deletion there would be about 75.
    assert.ok(mostSegments <= 8, `${mostSegments} segments at most`);
    assert.ok(stats.diskBytes <= 3 * SEGMENT_BYTES, `${stats.diskBytes}`);
    assert.equal(stats.liveMessages, 10);
    assert.equal(stats.compactedMessages, 0);
    const files = await readdir(dir);
    assert.equal(files.length, stats.segments);
    assert.ok(!files.includes('00000000000000000001.log'));

    // The first segment, which declared the queues, is long gone: the
    // declarations at the start of later segments keep the queues alive.
    const { replayed } = await replayOf(dir);
    const live = new Map<string, unknown>();
    const model = new MessageModel();
    for (const record of replayed) {
      if (record.type === 'queue-declared') {
        live.set(record.name, record.settings);
      } else if (record.type === 'queue-deleted') {
        live.delete(record.name);
      }
      model.apply(record);
    }
    assert.deepEqual([...live.keys()], ['tickets', 'tickets.dlq']);
    assert.deepEqual(live.get('tickets'), { maxAttempts: 3 });
    assert.deepEqual([...model.messages.keys()], previous);
  });
});

// Unlinking a full 64 MB segment took 17-23 ms here, and the directory's
// fsync up to 8 more; every batch used to wait for that (log-store.ts).
test('batches land while a dead segment is still being deleted', { timeout: 20_000 }, () => {
  return withTempDir(async (dir) => {
    let release = () => {};
    const unlinks: string[] = [];
    const io = {
      ...nodeIo,
      unlink: async (path: string) => {
        unlinks.push(path);
        if (unlinks.length === 1) await new Promise<void>((resolve) => (release = resolve));
        await nodeIo.unlink!(path);
      },
    };
    const { store } = await openStore(dir, { segmentBytes: SEGMENT_BYTES, io });
    await store.append(queues);

    let previous: number[] = [];
    for (let i = 0; i < 300 && unlinks.length === 0; i++) previous = await settleRound(store, previous);
    assert.equal(unlinks.length, 1, 'no segment became dead');
    const held = store.stats().segments;

    // The deletion waits; ten more rounds land meanwhile.
    for (let i = 0; i < 10; i++) previous = await settleRound(store, previous);
    assert.equal(unlinks.length, 1);
    assert.ok(store.stats().segments > held, `${store.stats().segments} segments`);
    assert.ok((await readdir(dir)).includes(unlinks[0].split('/').at(-1)!));

    release();
    await store.whenDeleted();
    assert.ok(!(await readdir(dir)).includes(unlinks[0].split('/').at(-1)!));
    assert.ok(store.stats().segments <= 3, `${store.stats().segments} segments`);
    await store.close();
    assert.equal((await readdir(dir)).length, store.stats().segments);
  });
});

test('a settled record is never orphaned from the message it settles', () => {
  return withTempDir(async (dir) => {
    const { store } = await openStore(dir, { segmentBytes: 2048 });
    const old = ticket(store.allocateSeq());
    const pinned = ticket(store.allocateSeq());
    await store.append([old, pinned]);
    // Fill segments with records that hold no messages, then settle `old`
    // from a later segment. Every segment but the first has no live
    // message, yet none may go while the first one stays.
    for (let i = 0; i < 200; i++) {
      const retried: LogRecord = {
        type: 'retried',
        seq: pinned.seq,
        failures: i,
        availableAt: 0,
      };
      await store.append([retried]);
    }
    await store.append([{ type: 'settled', seqs: [old.seq] }]);
    assert.ok(store.stats().segments > 2);
    await store.close();

    const { replayed } = await replayOf(dir);
    const model = MessageModel.of(replayed);
    assert.deepEqual([...model.messages.keys()], [pinned.seq]);
  });
});

test('compaction keeps disk bounded around a message never settled', () => {
  return withTempDir(async (dir) => {
    // The broker's view of live messages, kept as `published` snapshots.
    const current = new Map<number, PublishedRecord>();
    const { store } = await openStore(dir, {
      segmentBytes: SEGMENT_BYTES,
      snapshotMessage: (seq) => current.get(seq),
    });
    await store.append(queues.slice(0, 2));

    // A message dead-lettered early and never drained.
    const stuck = { ...ticket(store.allocateSeq()), failures: 0 };
    current.set(stuck.seq, stuck);
    await store.append([stuck]);

    let previous: number[] = [];
    let mostDisk = 0;
    for (let i = 0; i < 300; i++) {
      if (i === 50) {
        current.set(stuck.seq, { ...stuck, failures: 3, availableAt: 7 });
        await store.append([
          { type: 'retried', seq: stuck.seq, failures: 3, availableAt: 7 },
        ]);
      }
      if (i === 150) {
        const moved = {
          ...current.get(stuck.seq)!,
          queue: 'tickets.dlq',
          headers: { 'x-dead-letter-reason': 'max-attempts' },
        };
        current.set(stuck.seq, moved);
        await store.append([
          {
            type: 'moved',
            seq: stuck.seq,
            queue: moved.queue,
            headers: moved.headers,
            failures: moved.failures,
            availableAt: moved.availableAt,
            expiresAt: moved.expiresAt,
          },
        ]);
      }
      for (const seq of previous) current.delete(seq);
      previous = await settleRound(store, previous);
      for (const seq of previous) current.set(seq, ticket(seq));
      // Dead segments are deleted beside the write loop, and under load
      // that may lag a round or two: the bound is compaction's, not theirs.
      await store.whenDeleted();
      mostDisk = Math.max(mostDisk, store.stats().diskBytes);
    }

    await store.close();
    const stats = store.stats();
    assert.ok(stats.bytesWritten > 70 * SEGMENT_BYTES);
    assert.ok(stats.compactedMessages >= 1, `${stats.compactedMessages}`);
    // The trigger is 2 x live + 2 segments; allow one more segment for
    // the batch in flight when it trips.
    const bound = 2 * stats.liveBytes + 3 * SEGMENT_BYTES + 4096;
    assert.ok(mostDisk <= bound, `${mostDisk} > ${bound}`);
    assert.ok(stats.segments <= 5, `${stats.segments} segments`);
    assert.equal(stats.liveMessages, 11);
    assert.equal((await readdir(dir)).length, stats.segments);
    assert.ok(!(await readdir(dir)).includes('00000000000000000001.log'));

    const { replayed } = await replayOf(dir);
    const model = MessageModel.of(replayed);
    assert.deepEqual(model.messages.get(stuck.seq), current.get(stuck.seq));
    assert.deepEqual(
      [...model.messages.keys()].sort((a, b) => a - b),
      [stuck.seq, ...previous],
    );
  });
});

test('compaction skips a message the broker no longer has', () => {
  return withTempDir(async (dir) => {
    const { store, logger } = await openStore(dir, {
      segmentBytes: 2048,
      snapshotMessage: () => undefined,
    });
    await store.append([ticket(store.allocateSeq())]);
    let previous: number[] = [];
    for (let i = 0; i < 20; i++) previous = await settleRound(store, previous);

    const stats = store.stats();
    assert.equal(stats.compactedMessages, 0);
    const stalled = logger.warnings.filter(
      (w) => w.msg.startsWith('compaction found nothing to copy'),
    );
    assert.equal(stalled.length, 1, 'warned once for the segment');
    assert.equal(stalled[0].obj.liveMessages, 1);
    await store.close();
  });
});

test('with the disk low, settling half the log frees it around a pinned message', () => {
  return withTempDir(async (dir) => {
    const current = new Map<number, PublishedRecord>();
    const { store } = await openStore(dir, {
      segmentBytes: SEGMENT_BYTES,
      snapshotMessage: (seq) => current.get(seq),
    });
    const pinned = ticket(store.allocateSeq());
    current.set(pinned.seq, pinned);
    await store.append([queues[0], pinned]);

    // About twelve segments of tickets; then the older half is settled.
    const seqs: number[] = [];
    for (let i = 0; i < 40; i++) {
      const batch = Array.from({ length: 10 }, () => ticket(store.allocateSeq()));
      for (const record of batch) current.set(record.seq, record);
      seqs.push(...batch.map((record) => record.seq));
      await store.append(batch);
    }
    const older = seqs.slice(0, seqs.length / 2);
    for (const seq of older) current.delete(seq);
    await store.append([{ type: 'settled', seqs: older }]);
    const before = store.stats();
    assert.equal(before.compactedMessages, 0, 'garbage is below the usual trigger');

    // The disk is low: the next batch sets compaction off.
    store.setDiskLow(true);
    await store.append([{ type: 'settled', seqs: [] }]);
    await store.close();
    const after = store.stats();
    assert.ok(after.compactedMessages >= 1, 'the pinned message was not copied');
    assert.ok(
      after.diskBytes < before.diskBytes * 0.7,
      `${after.diskBytes} of ${before.diskBytes} bytes left`,
    );

    const { replayed } = await replayOf(dir);
    const model = MessageModel.of(replayed);
    assert.deepEqual([...model.messages.keys()].sort((a, b) => a - b), [pinned.seq, ...seqs.slice(seqs.length / 2)]);
  });
});
