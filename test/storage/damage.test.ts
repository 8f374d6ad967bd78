// Damage to segments other than the last: they were complete and their
// records confirmed, so recovery must keep every record the damage did
// not touch, leave the files as they are, and say what it skipped.

import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeRecord } from '../../src/storage/codec.js';
import type { LogRecord } from '../../src/storage/records.js';
import {
  SEGMENT_HEADER_BYTES,
  readSegment,
  segmentPath,
} from '../../src/storage/segment-file.js';
import { seededRandom } from '../helpers.js';
import { openStore, replayOf, ticket, withTempDir } from './helpers.js';

const declared: LogRecord = {
  type: 'queue-declared',
  name: 'tickets',
  settings: {},
};

/**
 * Writes segments 1..n, one per group: each open starts a segment (which
 * first declares the live queues again), the group goes in, it closes.
 * Returns what each segment holds, in order.
 */
async function writeSegments(
  dir: string,
  groups: LogRecord[][],
): Promise<LogRecord[][]> {
  const held: LogRecord[][] = [];
  for (const [i, group] of groups.entries()) {
    const { store } = await openStore(dir);
    await store.append(group);
    await store.close();
    held.push(i === 0 ? group : [declared, ...group]);
  }
  return held;
}

const groups = (): LogRecord[][] => [
  [declared, ticket(1), ticket(2)],
  [ticket(3), ticket(4), ticket(5)],
  [ticket(6)],
];

test('a zeroed header in a middle segment: kept, its records replayed', () => {
  return withTempDir(async (dir) => {
    const held = await writeSegments(dir, groups());
    const middle = segmentPath(dir, 2);
    const bytes = await readFile(middle);
    bytes.fill(0, 0, SEGMENT_HEADER_BYTES);
    await writeFile(middle, bytes);

    const { store, replayed, logger } = await openStore(dir);
    assert.deepEqual(replayed, held.flat());
    assert.deepEqual(logger.errors, [
      {
        msg: 'skipping corrupt region of segment',
        obj: {
          file: middle,
          offset: 0,
          droppedBytes: SEGMENT_HEADER_BYTES,
          reason: 'segment header is zeroed',
        },
      },
    ]);
    assert.equal(store.stats().corruptRegions, 1);
    assert.equal(store.stats().corruptTails, 0);
    assert.deepEqual(await readFile(middle), bytes);
    await store.close();
  });
});

test('a middle segment zeroed or cut short is kept, not deleted', () => {
  return withTempDir(async (root) => {
    const cases: Array<[string, (bytes: Buffer) => Buffer, string]> = [
      ['zeros', (b) => Buffer.alloc(b.length), 'segment header is zeroed'],
      ['short', (b) => b.subarray(0, 10), 'shorter than a segment header'],
    ];
    for (const [name, damage, reason] of cases) {
      const dir = join(root, name);
      const held = await writeSegments(dir, groups());
      const middle = segmentPath(dir, 2);
      const bytes = damage(await readFile(middle));
      await writeFile(middle, bytes);

      const { store, replayed, logger } = await openStore(dir);
      assert.deepEqual(replayed, [...held[0], ...held[2]], name);
      assert.deepEqual(
        logger.errors.map((e) => [
          e.obj.file,
          e.obj.droppedBytes,
          e.obj.reason,
        ]),
        [[middle, bytes.length, reason]],
      );
      assert.deepEqual(logger.warnings, []);
      assert.equal(store.stats().corruptRegions, 1);
      assert.deepEqual(await readFile(middle), bytes);
      assert.equal((await readdir(dir)).length, 4, name);
      await store.close();
    }
  });
});

test('a last segment with a zeroed header but records after is kept', () => {
  return withTempDir(async (dir) => {
    const held = await writeSegments(dir, groups());
    const newest = segmentPath(dir, 3);
    const bytes = await readFile(newest);
    bytes.fill(0, 0, SEGMENT_HEADER_BYTES);
    await writeFile(newest, bytes);

    const { store, replayed, logger } = await openStore(dir);
    assert.deepEqual(replayed, held.flat());
    assert.equal(logger.errors.length, 1);
    assert.equal(logger.errors[0].obj.file, newest);
    assert.equal(store.stats().corruptTails, 0);
    assert.deepEqual(await readFile(newest), bytes);
    await store.close();
  });
});

test('missing middle segments are logged as errors and counted', () => {
  return withTempDir(async (dir) => {
    const held = await writeSegments(dir, [
      ...groups(),
      [ticket(7)],
      [ticket(8)],
    ]);
    await rm(segmentPath(dir, 2));
    await rm(segmentPath(dir, 4));

    const { store, replayed, logger } = await openStore(dir);
    assert.deepEqual(replayed, [...held[0], ...held[2], ...held[4]]);
    assert.deepEqual(logger.errors, [2, 4].map((id) => ({
      msg: 'segment files are missing from the log',
      obj: {
        dir,
        missingCount: 1,
        firstMissing: segmentPath(dir, id),
        lastMissing: segmentPath(dir, id),
      },
    })));
    assert.equal(store.stats().missingSegments, 2);
    await store.close();

    // A run of them is one entry; the new segment 6 leaves no new gap.
    await rm(segmentPath(dir, 3));
    const again = await replayOf(dir);
    assert.deepEqual(
      again.logger.errors.map((e) => [
        e.obj.missingCount,
        e.obj.firstMissing,
        e.obj.lastMissing,
      ]),
      [[3, segmentPath(dir, 2), segmentPath(dir, 4)]],
    );
    assert.equal(again.store.stats().missingSegments, 3);
  });
});

// Stand-in for randomness that repeats from run to run.
test('damage in an older segment loses exactly the records it touches', () => {
  return withTempDir(async (root) => {
    const source = join(root, 'source');
    const first: LogRecord[] = [declared];
    for (let seq = 1; seq <= 40; seq++) first.push(ticket(seq));
    const held = await writeSegments(source, [first, [ticket(41)]]);
    const original = await readFile(segmentPath(source, 1));
    const frames: Array<[number, number]> = [];
    let offset = SEGMENT_HEADER_BYTES;
    for (const record of held[0]) {
      const length = encodeRecord(record).length;
      frames.push([offset, offset + length]);
      offset += length;
    }

    const random = seededRandom(7);
    for (let round = 0; round < 60; round++) {
      const kind = ['flip', 'zero', 'garbage'][round % 3];
      const from =
        SEGMENT_HEADER_BYTES +
        Math.floor(random() * (original.length - SEGMENT_HEADER_BYTES));
      const to = Math.min(
        original.length,
        from + 1 + Math.floor(random() * (kind === 'flip' ? 1 : 2000)),
      );
      const bytes = Buffer.from(original);
      for (let i = from; i < to; i++) {
        if (kind === 'flip') bytes[i] ^= 1 << Math.floor(random() * 8);
        else bytes[i] = kind === 'zero' ? 0 : Math.floor(random() * 256);
      }
      const dir = join(root, `round-${round}`);
      await mkdir(dir);
      await writeFile(segmentPath(dir, 1), bytes);
      await writeFile(
        segmentPath(dir, 2),
        await readFile(segmentPath(source, 2)),
      );

      const kept = held[0].filter((_, i) => {
        const [start, end] = frames[i];
        return end <= from || start >= to || bytes.subarray(start, end)
          .equals(original.subarray(start, end));
      });
      const { store, replayed, logger } = await openStore(dir);
      const what = `round ${round}: ${kind} ${from}..${to}`;
      assert.deepEqual(replayed, [...kept, ...held[1]], what);
      const lost = held[0].length - kept.length;
      assert.equal(store.stats().corruptRegions, lost > 0 ? 1 : 0, what);
      assert.equal(logger.errors.length, lost > 0 ? 1 : 0, what);
      assert.deepEqual(await readFile(segmentPath(dir, 1)), bytes, what);
      await store.close();
    }
  });
});

test('readSegment reports each damaged stretch and reads on after it', () => {
  return withTempDir(async (dir) => {
    const records = [declared, ticket(1), ticket(2), ticket(3), ticket(4)];
    await writeSegments(dir, [records]);
    const path = segmentPath(dir, 1);
    const bytes = await readFile(path);
    const sizes = records.map((record) => encodeRecord(record).length);
    const at = (i: number) =>
      SEGMENT_HEADER_BYTES + sizes.slice(0, i).reduce((a, b) => a + b, 0);
    bytes[at(1) + 50] ^= 0xff;
    bytes.fill(0, at(3), at(3) + 4); // ticket 3's length
    await writeFile(path, Buffer.concat([bytes, Buffer.from('torn')]));

    const seen: LogRecord[] = [];
    const scan = await readSegment(path, (record) => seen.push(record));
    assert.deepEqual(seen, [declared, ticket(2), ticket(4)]);
    assert.deepEqual(scan.damage, [
      { offset: at(1), bytes: sizes[1], reason: 'frame checksum mismatch' },
      { offset: at(3), bytes: sizes[3], reason: 'frame has an empty payload' },
      {
        offset: bytes.length,
        bytes: 4,
        reason: 'torn frame: 4 bytes at the end',
      },
    ]);
    assert.equal(scan.validBytes, bytes.length);
    assert.equal(scan.gaveUp, false);
  });
});
