import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { StoreUnavailableError } from '../../src/errors.js';
import { encodeRecord } from '../../src/storage/codec.js';
import { crc32c } from '../../src/storage/crc32c.js';
import { LogStore } from '../../src/storage/log-store.js';
import type { LogRecord, PublishedRecord } from '../../src/storage/records.js';
import {
  FORMAT_VERSION,
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

test('a flipped bit in an older segment costs its record only', () => {
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
      ...records.slice(7),
      declared,
      later,
    ]);
    assert.equal(store.stats().corruptRegions, 1);
    assert.equal(store.stats().corruptTails, 0);
    assert.deepEqual(logger.warnings, []);
    assert.deepEqual(logger.errors, [
      {
        msg: 'skipping corrupt region of segment',
        obj: {
          file: path,
          offset: sixth,
          droppedBytes: sizes[6],
          reason: 'frame checksum mismatch',
        },
      },
    ]);
    // Complete and confirmed: the file is left exactly as it was found.
    assert.deepEqual(await readFile(path), bytes);
    await store.close();
  });
});

test('a bad record mid last segment is skipped, and only the tail cut', () => {
  return withTempDir(async (dir) => {
    const records: LogRecord[] = [declared, ticket(1, 'orders')];
    records.push(ticket(2, 'orders'), ticket(3, 'orders'), last);
    const original = await writeLog(dir, records);
    const sizes = records.map((record) => encodeRecord(record).length);
    const second = SEGMENT_HEADER_BYTES + sizes[0] + sizes[1];
    const lastStart = original.length - sizes[4];

    // Damage to ticket 2, and a torn final record.
    const damaged = Buffer.from(original.subarray(0, lastStart + 9));
    damaged[second + 300] ^= 0x01;
    const path = segmentPath(dir, 1);
    await writeFile(path, damaged);

    const { store, replayed, logger } = await openStore(dir);
    assert.deepEqual(replayed, [
      declared,
      ticket(1, 'orders'),
      ticket(3, 'orders'),
    ]);
    assert.equal(store.stats().corruptRegions, 1);
    assert.equal(store.stats().corruptTails, 1);
    assert.deepEqual(
      logger.errors.map((e) => [e.msg, e.obj.offset, e.obj.droppedBytes]),
      [['skipping corrupt region of segment', second, sizes[2]]],
    );
    assert.deepEqual(
      logger.warnings.map((e) => [e.msg, e.obj.offset, e.obj.droppedBytes]),
      [['dropping bad tail of segment', lastStart, 9]],
    );
    // Only the tail is cut; the damaged record stays where it is.
    assert.deepEqual(
      await readFile(path),
      damaged.subarray(0, lastStart),
    );
    await store.close();
  });
});

test('a blank last segment is removed and its id used again', () => {
  return withTempDir(async (root) => {
    const blanks: Array<[string, Buffer]> = [
      ['partial-header', encodeSegmentHeader(0).subarray(0, 10)],
      ['zeros', Buffer.alloc(4096)],
      ['empty', Buffer.alloc(0)],
    ];
    for (const [name, blank] of blanks) {
      const dir = join(root, name);
      await writeLog(dir, [declared, ticket(1, 'orders')]);
      // writeLog's close leaves segment 1 only; a crash creating 2:
      const unborn = segmentPath(dir, 2);
      await writeFile(unborn, blank);

      const { store, replayed, logger } = await openStore(dir);
      assert.deepEqual(replayed, [declared, ticket(1, 'orders')], name);
      assert.equal(store.stats().corruptTails, 1, name);
      assert.equal(store.stats().corruptRegions, 0, name);
      assert.deepEqual(logger.errors, [], name);
      assert.deepEqual(
        logger.warnings.map((w) => [w.msg, w.obj.file, w.obj.droppedBytes]),
        [['removing segment with an incomplete header', unborn, blank.length]],
      );
      // The new segment takes id 2, so no gap is left behind.
      assert.deepEqual(await readdir(dir), [
        '00000000000000000001.log',
        '00000000000000000002.log',
      ]);
      assert.ok((await stat(unborn)).size > SEGMENT_HEADER_BYTES, name);
      await store.close();

      const again = await replayOf(dir);
      assert.deepEqual(again.replayed, [
        declared,
        ticket(1, 'orders'),
        declared,
      ]);
      assert.equal(again.store.stats().missingSegments, 0);
      assert.deepEqual(again.logger.errors, []);
    }
  });
});

test('a header that is not ours stops the open instead of truncating', () => {
  return withTempDir(async (dir) => {
    await writeLog(dir, [declared]);
    const path = segmentPath(dir, 1);
    const bytes = await readFile(path);

    const newer = Buffer.from(bytes);
    newer.writeUInt32LE(FORMAT_VERSION + 1, 8);
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

test('ids the broker made are not kept as dedup ids; in a version 2 segment every id is', () => {
  return withTempDir(async (root) => {
    const recentIds = { maxIds: 100, defaultWindowMs: 1e12 };
    const made: PublishedRecord = {
      ...ticket(1, 'orders'),
      id: '0f8fad5b-d9cb-469f-a165-70867728950e',
      madeId: true,
    };
    const given: PublishedRecord = {
      ...ticket(2, 'orders'),
      id: '7c9e6679-7425-40de-944b-e07fc1f90ae7',
    };
    const records: LogRecord[] = [declared, made, given];

    const current = join(root, 'current');
    await writeLog(current, records);
    const fresh = await openStore(current, { recentIds });
    await fresh.store.close();
    assert.deepEqual(fresh.replayed, records);
    assert.deepEqual(fresh.store.recentIds().map((recent) => recent.id), [given.id]);

    // Format 2 had no flag for a made id: its records replay as producers'.
    const older = join(root, 'older');
    const bytes = await writeLog(older, [declared, { ...made, madeId: undefined }, given]);
    bytes.writeUInt32LE(2, 8);
    bytes.writeUInt32LE(crc32c(bytes.subarray(0, 20)), 20);
    await writeFile(segmentPath(older, 1), bytes);
    const replayed = await openStore(older, { recentIds });
    await replayed.store.close();
    assert.equal(replayed.store.stats().corruptTails, 0);
    assert.deepEqual(replayed.store.recentIds().map((recent) => recent.id), [made.id, given.id]);
  });
});

test('a segment of format version 1 (type 3 `published` records) still replays', () => {
  return withTempDir(async (dir) => {
    // A fractional priority is one type 7 cannot hold: these go out as
    // type 3, as every `published` record did in format 1.
    const records: LogRecord[] = [declared, { ...ticket(1, 'orders'), priority: 2.5 }, last];
    const bytes = await writeLog(dir, records);
    assert.equal(bytes[SEGMENT_HEADER_BYTES + encodeRecord(declared).length + 8], 3);
    const old = Buffer.from(bytes);
    old.writeUInt32LE(1, 8);
    old.writeUInt32LE(crc32c(old.subarray(0, 20)), 20);
    await writeFile(segmentPath(dir, 1), old);

    const { replayed, store } = await replayOf(dir);
    assert.deepEqual(replayed, records);
    assert.equal(store.stats().corruptTails, 0);
  });
});
