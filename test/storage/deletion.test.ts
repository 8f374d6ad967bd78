// Dead segments are deleted beside the write loop (src/storage/
// dead-segments.ts): what a failed, slow or surprising unlink leaves.
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { nodeIo, type StoreIo } from '../../src/storage/io.js';
import type { PublishedRecord } from '../../src/storage/records.js';
import {
  MessageModel,
  openStore,
  replayOf,
  settleRound,
  settledYet,
  ticket,
  withTempDir,
} from './helpers.js';

const SEGMENT_BYTES = 16 * 1024;

async function bytesOnDisk(dir: string): Promise<{ files: number; bytes: number }> {
  const names = await readdir(dir);
  let bytes = 0;
  for (const name of names) bytes += (await stat(join(dir, name))).size;
  return { files: names.length, bytes };
}

function errno(code: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${code}: simulated failure, unlink`);
  err.code = code;
  err.syscall = 'unlink';
  return err;
}

// An unlink that says ENOENT found the file gone (removed by hand, or an
// unlink retried by a network file system after the first went through).
// Counting it present kept it at the head of the segments to delete, so
// every later dead segment stayed on disk too, for as long as the broker ran.
test('a dead segment whose file is already gone counts as deleted', () => {
  return withTempDir(async (dir) => {
    let unlinks = 0;
    const io: StoreIo = {
      ...nodeIo,
      unlink: async (path) => {
        unlinks++;
        await nodeIo.unlink!(path);
        if (unlinks === 1) throw errno('ENOENT');
      },
    };
    const { store, logger } = await openStore(dir, { segmentBytes: SEGMENT_BYTES, io });
    await store.append([{ type: 'queue-declared', name: 'tickets', settings: {} }]);

    let previous: number[] = [];
    let mostSegments = 0;
    for (let i = 0; i < 200; i++) {
      previous = await settleRound(store, previous);
      await store.whenDeleted();
      mostSegments = Math.max(mostSegments, store.stats().segments);
    }
    await store.close();

    assert.ok(unlinks > 1, `${unlinks} unlinks`);
    assert.ok(mostSegments <= 3, `${mostSegments} segments at most`);
    const disk = await bytesOnDisk(dir);
    assert.equal(store.stats().segments, disk.files);
    assert.equal(store.stats().diskBytes, disk.bytes);
    assert.ok(!logger.warnings.some((e) => e.msg === 'deleting segment failed'));
    const reopened = await replayOf(dir);
    assert.equal(reopened.store.stats().liveMessages, 10);
  });
});

// Any other failure leaves the file, and the next landing tries again.
test('a segment that could not be deleted goes once unlink works again', () => {
  return withTempDir(async (dir) => {
    let failing = true;
    let failures = 0;
    const io: StoreIo = {
      ...nodeIo,
      unlink: async (path) => {
        if (failing) {
          failures++;
          throw errno(failures % 2 === 0 ? 'EIO' : 'EACCES');
        }
        await nodeIo.unlink!(path);
      },
    };
    const { store, logger } = await openStore(dir, { segmentBytes: SEGMENT_BYTES, io });
    await store.append([{ type: 'queue-declared', name: 'tickets', settings: {} }]);

    let previous: number[] = [];
    for (let i = 0; i < 60; i++) previous = await settleRound(store, previous);
    await store.whenDeleted();
    const stuck = store.stats().segments;
    assert.ok(failures >= 2 && stuck >= 5, `${failures} failures, ${stuck} segments`);
    assert.ok(logger.warnings.some((e) => e.msg === 'deleting segment failed'));

    failing = false;
    for (let i = 0; i < 3; i++) previous = await settleRound(store, previous);
    await store.whenDeleted();
    assert.ok(store.stats().segments <= 3, `${store.stats().segments} segments`);
    await store.close();
    const disk = await bytesOnDisk(dir);
    assert.equal(store.stats().segments, disk.files);
    assert.equal(store.stats().diskBytes, disk.bytes);
    const reopened = await replayOf(dir);
    assert.equal(reopened.store.stats().liveMessages, 10);
  });
});

// close() waits for a deletion under way: the descriptors it closes and
// the checkpoint it may write must not race the unlinks.
test('close waits for a held deletion and leaves the files it counts', () => {
  return withTempDir(async (dir) => {
    const held: Array<() => void> = [];
    let holding = false;
    const io: StoreIo = {
      ...nodeIo,
      unlink: async (path) => {
        if (holding) await new Promise<void>((resolve) => held.push(resolve));
        await nodeIo.unlink!(path);
      },
    };
    const { store } = await openStore(dir, { segmentBytes: SEGMENT_BYTES, io });
    await store.append([{ type: 'queue-declared', name: 'tickets', settings: {} }]);

    let previous: number[] = [];
    for (let i = 0; i < 20; i++) previous = await settleRound(store, previous);
    holding = true;
    for (let i = 0; i < 100 && held.length === 0; i++) previous = await settleRound(store, previous);
    assert.equal(held.length, 1, 'no deletion was held');

    const closed = store.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(await settledYet(closed), false, 'close did not wait for the deletion');
    holding = false;
    held.shift()!();
    await closed;
    const disk = await bytesOnDisk(dir);
    assert.equal(store.stats().segments, disk.files);
    assert.equal(store.stats().diskBytes, disk.bytes);
    const reopened = await replayOf(dir);
    assert.equal(reopened.store.stats().liveMessages, 10);
    assert.equal(reopened.store.stats().missingSegments, 0);
  });
});

// Compaction waits while a deletion runs. It went on by itself before:
// the copies land, the oldest segment dies and goes, the next is
// compacted, until the garbage is under the trigger. Waiting must not end
// that chain at the first deletion, leaving the disk full of dead space
// until some unrelated batch lands (with the disk low and publishes
// refused, maybe never).
test('compaction goes on by itself after a deletion it waited for', () => {
  return withTempDir(async (dir) => {
    const current = new Map<number, PublishedRecord>();
    const { store } = await openStore(dir, {
      segmentBytes: SEGMENT_BYTES,
      snapshotMessage: (seq) => current.get(seq),
    });
    await store.append([{ type: 'queue-declared', name: 'tickets', settings: {} }]);

    // About twelve segments, each with a message or two never settled.
    const pinned: number[] = [];
    const others: number[] = [];
    for (let i = 0; i < 60; i++) {
      const batch = Array.from({ length: 10 }, () => ticket(store.allocateSeq()));
      for (const record of batch) current.set(record.seq, record);
      if (i % 3 === 0) pinned.push(batch[0].seq);
      others.push(...batch.map((record) => record.seq).filter((seq) => !pinned.includes(seq)));
      await store.append(batch);
    }
    for (const seq of others) current.delete(seq);
    const before = store.stats();
    assert.ok(before.segments >= 10, `${before.segments} segments`);
    await store.append([{ type: 'settled', seqs: others }]);

    // Nothing else is appended: compaction and deletion run on alone.
    for (let i = 0; i < 40; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      await store.whenDeleted();
    }
    const after = store.stats();
    const bound = 2 * after.liveBytes + 3 * SEGMENT_BYTES;
    await store.close();
    const left = `${after.diskBytes} > ${bound} bytes, ${after.segments} segments`;
    assert.ok(after.diskBytes <= bound, left);

    const { replayed } = await replayOf(dir);
    const model = MessageModel.of(replayed);
    assert.deepEqual([...model.messages.keys()].sort((a, b) => a - b), pinned);
  });
});
