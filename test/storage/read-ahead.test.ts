// Reading cold messages ahead, off the event loop (frame-reader.ts): a
// readPublished after a readAhead must find the frames in memory and
// give exactly what reading them in line gives, damaged frames included,
// and the read-ahead buffers must stay within their budget.

import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { test } from 'node:test';

import { READ_AHEAD_BYTES } from '../../src/storage/frame-reader.js';
import { FramesAhead } from '../../src/storage/read-ahead.js';
import type { PublishedRecord } from '../../src/storage/records.js';
import { segmentPath } from '../../src/storage/segment-file.js';
import { openStore, ticket, withTempDir } from './helpers.js';

const KIB = 1024;

/** Records 1..n: every third has a 16 KiB body, the others a ticket's. */
function mixed(n: number): PublishedRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const record = ticket(i + 1);
    if (i % 3 === 0) record.body = Buffer.alloc(16 * KIB, `large body ${i + 1};`);
    return record;
  });
}

test('a read after a read ahead returns the same records and reads nothing in line', () => {
  return withTempDir(async (dir) => {
    const { store } = await openStore(dir);
    const records = mixed(300);
    await store.append(records);
    const seqs = records.map((record) => record.seq);

    await store.readAhead(seqs);
    assert.deepEqual(store.readPublished(seqs), records);
    const stats = store.stats();
    assert.equal(stats.framesReadAhead, 300);
    assert.equal(stats.framesReadInLine, 0);

    // Taken once: reading them again goes to the file.
    assert.deepEqual(store.readPublished(seqs.slice(0, 10)), records.slice(0, 10));
    assert.equal(store.stats().framesReadInLine, 10);
    await store.close();
  });
});

test('a read ahead of seqs out of log order, some twice, reads each frame once', () => {
  return withTempDir(async (dir) => {
    const { store } = await openStore(dir);
    const records = mixed(40);
    await store.append(records);

    const asked = [30, 3, 17, 3, 40, 1, 30, 2];
    await store.readAhead(asked);
    const once = [...new Set(asked)];
    assert.deepEqual(store.readPublished(once), once.map((seq) => records[seq - 1]));
    assert.equal(store.stats().framesReadAhead, once.length);
    assert.equal(store.stats().framesReadInLine, 0);
    await store.close();
  });
});

test('an append of more large bodies than a writev takes pieces lands whole', () => {
  return withTempDir(async (dir) => {
    const { store } = await openStore(dir);
    // Each body is a piece of the write, and so is what lies between:
    // well over IOV_MAX (1024) pieces in one batch.
    const records = Array.from({ length: 1100 }, (_, i) => ({
      ...ticket(i + 1),
      body: Buffer.alloc(5000, `body ${i + 1};`),
    }));
    await store.append(records);
    const seqs = records.map((record) => record.seq);
    assert.deepEqual(store.readPublished(seqs), records);
    await store.close();

    const { store: again, replayed } = await openStore(dir);
    assert.deepEqual(replayed.filter((record) => record.type === 'published'), records);
    await again.close();
  });
});

test('a read ahead of some seqs leaves the others to be read in line, in the order asked', () => {
  return withTempDir(async (dir) => {
    const { store } = await openStore(dir);
    const records = mixed(40);
    await store.append(records);

    await store.readAhead([2, 4, 6, 8, 40]);
    const asked = [40, 1, 2, 3, 4, 5, 6, 7, 8, 39];
    assert.deepEqual(store.readPublished(asked), asked.map((seq) => records[seq - 1]));
    assert.equal(store.stats().framesReadAhead, 5);
    assert.equal(store.stats().framesReadInLine, 5);
    await store.close();
  });
});

test('a frame damaged on disk is unreadable when read ahead, as when read in line', () => {
  return withTempDir(async (dir) => {
    const { store, logger } = await openStore(dir);
    const records = mixed(30);
    await store.append(records);

    // Flip a byte in the body of seq 10 (a 16 KiB one) and of seq 11.
    const path = segmentPath(dir, 1);
    const file = await readFile(path);
    for (const marker of ['large body 10;', '"ticket":11,']) {
      const at = file.indexOf(marker);
      assert.ok(at > 0, marker);
      file[at] ^= 0xff;
    }
    await writeFile(path, file);

    const seqs = records.map((record) => record.seq);
    await store.readAhead(seqs);
    const read = store.readPublished(seqs);
    assert.equal(store.stats().framesReadInLine, 0);
    assert.equal(read[9], undefined);
    assert.equal(read[10], undefined);
    assert.deepEqual(read.filter((_, i) => i !== 9 && i !== 10),
      records.filter((_, i) => i !== 9 && i !== 10));
    const failures = logger.errors
      .filter((e) => e.msg === 'could not read a message back from the log');
    assert.equal(failures.length, 2);
    assert.match(String(failures[0].obj.err), /checksum/);
    await store.close();
  });
});

test('read-ahead buffers stay within their budget; the rest is read in line', () => {
  return withTempDir(async (dir) => {
    const { store } = await openStore(dir);
    const count = READ_AHEAD_BYTES / (16 * KIB) + 200;
    const records = Array.from({ length: count }, (_, i) => ({
      ...ticket(i + 1),
      body: Buffer.alloc(16 * KIB, i % 251),
    }));
    for (let at = 0; at < count; at += 256) await store.append(records.slice(at, at + 256));
    const seqs = records.map((record) => record.seq);

    await store.readAhead(seqs);
    const read = store.readPublished(seqs);
    assert.ok(read.every((record, i) => record?.body.equals(records[i].body)));
    const { framesReadAhead, framesReadInLine } = store.stats();
    assert.ok(framesReadAhead > 0);
    assert.ok(framesReadAhead * 16 * KIB <= READ_AHEAD_BYTES, `${framesReadAhead}`);
    assert.equal(framesReadAhead + framesReadInLine, count);
    await store.close();
  });
});

test('a store closed while reading ahead closes cleanly; the read ahead resolves', () => {
  return withTempDir(async (dir) => {
    const { store } = await openStore(dir);
    const records = mixed(200);
    await store.append(records);
    const reading = store.readAhead(records.map((record) => record.seq));
    await store.close();
    await reading;
    // Closed: nothing more is read ahead.
    await store.readAhead([1, 2, 3]);
  });
});

test('FramesAhead: a frame taken while being read is dropped when it lands', () => {
  const ahead = new FramesAhead(64, 1);
  const chunk = ahead.chunk()!;
  const entry = ahead.reserve(1, 0, 40, chunk);
  assert.equal(ahead.take(1, 0, 40), undefined);
  ahead.land(entry, 0);
  assert.equal(ahead.has(1, 0), false);
  assert.equal(ahead.chunksInUse, 1, 'the read still runs');
  ahead.finish(chunk);
  assert.equal(ahead.chunksInUse, 0);
  assert.equal(ahead.chunk(), chunk, 'the chunk is used again');
});

test('FramesAhead: a frame taken holds its chunk until released', () => {
  const ahead = new FramesAhead(64, 1);
  const chunk = ahead.chunk()!;
  const entry = ahead.reserve(1, 0, 40, chunk);
  ahead.land(entry, 0);
  ahead.finish(chunk);
  const taken = ahead.take(1, 0, 40)!;
  assert.equal(taken.at, 0);
  assert.equal(ahead.chunk(), undefined, 'its frame is still being decoded');
  ahead.release(taken.chunk);
  assert.equal(ahead.chunk(), chunk);
});

test('FramesAhead: room is made from the oldest landed frames, never from reads running', () => {
  const ahead = new FramesAhead(64, 2);
  const first = ahead.chunk()!;
  ahead.land(ahead.reserve(1, 0, 40, first), 0);
  ahead.finish(first);
  const second = ahead.chunk()!;
  ahead.reserve(1, 40, 40, second);
  // Both chunks used: the landed frame goes, the one being read stays.
  assert.equal(ahead.chunk(), first);
  assert.equal(ahead.has(1, 0), false);
  assert.equal(ahead.has(1, 40), true);
  // Nothing landed left to drop: no room.
  assert.equal(ahead.chunk(), undefined);
});

test('FramesAhead: a frame of another length than asked is not taken, and is dropped', () => {
  const ahead = new FramesAhead(64, 1);
  const chunk = ahead.chunk()!;
  ahead.land(ahead.reserve(2, 0, 10, chunk), 0);
  ahead.finish(chunk);
  assert.equal(ahead.take(2, 0, 12), undefined);
  assert.equal(ahead.has(2, 0), false);
  assert.equal(ahead.chunksInUse, 0);
});

test('FramesAhead: forgetting a segment drops its frames', () => {
  const ahead = new FramesAhead(64, 2);
  const chunk = ahead.chunk()!;
  ahead.land(ahead.reserve(3, 0, 10, chunk), 0);
  ahead.reserve(3, 10, 10, chunk);
  ahead.finish(chunk);
  const other = ahead.chunk()!;
  ahead.land(ahead.reserve(4, 0, 10, other), 0);
  ahead.finish(other);
  ahead.forgetSegment(3);
  assert.equal(ahead.size, 1);
  assert.equal(ahead.chunksInUse, 1);
  assert.equal(ahead.take(4, 0, 10)?.at, 0);
});
