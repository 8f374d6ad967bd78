import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { StoreUnavailableError } from '../../src/errors.js';
import { encodeRecord } from '../../src/storage/codec.js';
import { LogStore } from '../../src/storage/log-store.js';
import type { LogRecord } from '../../src/storage/records.js';
import {
  SEGMENT_HEADER_BYTES,
  encodeSegmentHeader,
  segmentPath,
} from '../../src/storage/segment-file.js';
import { openStore, replayOf, ticket, withTempDir } from './helpers.js';

const declared: LogRecord = {
  type: 'queue-declared',
  name: 'orders',
  settings: { visibilityTimeoutMs: 30_000 },
};

// A small last record keeps the every-offset loop quick; the headers make
// sure cuts land inside strings, counts and numbers alike.
const last: LogRecord = {
  type: 'moved',
  seq: 2,
  queue: 'orders.dlq',
  headers: { reason: 'max-attempts', 'ü': 'ç' },
  failures: 5,
  availableAt: 1_700_000_000_000,
  expiresAt: 1_700_000_600_000,
};

/** Writes `records` into segment 1 of `dir` and returns its bytes. */
async function writeLog(dir: string, records: LogRecord[]): Promise<Buffer> {
  const { store } = await openStore(dir);
  await store.append(records);
  await store.close();
  return readFile(segmentPath(dir, 1));
}

test('a torn last record is dropped at every cut, and the log goes on', () => {
  return withTempDir(async (root) => {
    const kept = [declared, ticket(1, 'orders'), ticket(2, 'orders')];
    const original = await writeLog(join(root, 'source'), [...kept, last]);
    const lastBytes = encodeRecord(last).length;
    const start = original.length - lastBytes;
    const keptBytes = kept.reduce((n, r) => n + encodeRecord(r).length, 0);
    assert.equal(start, SEGMENT_HEADER_BYTES + keptBytes);

    for (let cut = start; cut < original.length; cut++) {
      const dir = join(root, `cut-${cut}`);
      await mkdir(dir);
      await writeFile(segmentPath(dir, 1), original.subarray(0, cut));

      const { store, replayed, logger } = await openStore(dir);
      assert.deepEqual(replayed, kept, `cut at ${cut}`);
      const torn = cut > start ? 1 : 0;
      assert.equal(store.stats().corruptTails, torn);
      assert.equal(logger.warnings.length, torn);
      assert.equal((await stat(segmentPath(dir, 1))).size, start);

      const after = ticket(3, 'orders');
      await store.append([after]);
      await store.close();

      // The new segment starts by declaring the live queue again.
      const { replayed: again, store: reopened } = await replayOf(dir);
      assert.deepEqual(again, [...kept, declared, after], `cut at ${cut}`);
      assert.equal(reopened.stats().corruptTails, 0);
    }
  });
});

test('a flipped bit mid-segment drops the rest of that segment only', () => {
  return withTempDir(async (dir) => {
    const records: LogRecord[] = [declared];
    for (let seq = 1; seq <= 10; seq++) records.push(ticket(seq, 'orders'));
    await writeLog(dir, records);

    // Segment 2 is the active one made by writeLog's open; add to it.
    const second = await openStore(dir);
    const later = ticket(11, 'orders');
    await second.store.append([later]);
    await second.store.close();

    const path = segmentPath(dir, 1);
    const bytes = await readFile(path);
    const sizes = records.map((record) => encodeRecord(record).length);
    const sum = (list: number[]) => list.reduce((a, b) => a + b, 0);
    const sixth = SEGMENT_HEADER_BYTES + sum(sizes.slice(0, 6));
    bytes[sixth + 200] ^= 0x10;
    await writeFile(path, bytes);

    const { store, replayed, logger } = await openStore(dir);
    assert.deepEqual(replayed, [
      ...records.slice(0, 6),
      declared,
      later,
    ]);
    assert.equal(store.stats().corruptTails, 1);
    assert.equal(logger.warnings.length, 1);
    assert.deepEqual(logger.warnings[0], {
      msg: 'dropping bad tail of segment',
      obj: {
        file: path,
        offset: sixth,
        droppedBytes: sum(sizes.slice(6)),
        reason: 'frame checksum mismatch',
      },
    });
    assert.equal((await stat(path)).size, sixth);
    await store.close();
  });
});

test('a segment with an incomplete header is removed', () => {
  return withTempDir(async (dir) => {
    await writeLog(dir, [declared]);
    const unborn = segmentPath(dir, 7);
    await writeFile(unborn, encodeSegmentHeader(0).subarray(0, 10));
    const zeroed = segmentPath(dir, 8);
    await writeFile(zeroed, Buffer.alloc(4096));

    const { store, replayed, logger } = await openStore(dir);
    assert.deepEqual(replayed, [declared]);
    assert.equal(store.stats().corruptTails, 2);
    assert.deepEqual(
      logger.warnings.map((w) => [w.obj.file, w.obj.droppedBytes]),
      [[unborn, 10], [zeroed, 4096]],
    );
    // Segments 1 (queue only, no messages) and 2 are dead; 9 is new.
    assert.deepEqual(await readdir(dir), ['00000000000000000009.log']);
    await store.close();

    const { replayed: again } = await replayOf(dir);
    assert.deepEqual(again, [declared]);
  });
});

test('a header that is not ours stops the open instead of truncating', () => {
  return withTempDir(async (dir) => {
    await writeLog(dir, [declared]);
    const path = segmentPath(dir, 1);
    const bytes = await readFile(path);

    const newer = Buffer.from(bytes);
    newer.writeUInt32LE(2, 8);
    await writeFile(path, newer);
    await assert.rejects(openStore(dir), (err: unknown) => {
      assert.ok(err instanceof StoreUnavailableError);
      assert.match(err.message, /header checksum mismatch/);
      return true;
    });

    const foreign = Buffer.from(bytes);
    foreign.write('NOTUSHER', 0, 'latin1');
    await writeFile(path, foreign);
    await assert.rejects(openStore(dir), /does not start with the Usher/);
    assert.equal((await stat(path)).size, bytes.length);
  });
});

test('an error thrown by the replay callback comes out of open as is', () => {
  return withTempDir(async (dir) => {
    await writeLog(dir, [declared]);
    const boom = new Error('replay refused');
    await assert.rejects(
      LogStore.open(
        {
          dir,
          logger: { info() {}, warn() {}, error() {} },
          snapshotMessage: () => undefined,
        },
        () => {
          throw boom;
        },
      ),
      (err: unknown) => err === boom,
    );
  });
});
