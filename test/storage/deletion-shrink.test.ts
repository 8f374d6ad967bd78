// A dead segment bigger than SHRINK_STEP_BYTES is renamed out of the log,
// cut from its end in steps and only then unlinked (dead-segments.ts),
// so that no single journal commit carries a whole segment's discards.
// What must hold: the file unlinked is the renamed one and already cut
// short, nothing is left behind, and a renamed file a crash left is
// removed at the next open without being read.

import assert from 'node:assert/strict';
import { readdir, rename, stat } from 'node:fs/promises';
import { test } from 'node:test';

import { SHRINK_STEP_BYTES } from '../../src/storage/dead-segments.js';
import { nodeIo, type StoreIo } from '../../src/storage/io.js';
import { RETIRED_SUFFIX, readSegment, segmentPath } from '../../src/storage/segment-file.js';
import { openStore, settleRound, ticket, withTempDir } from './helpers.js';

test('a big dead segment is renamed out of the log and cut short before its unlink', () =>
  withTempDir(async (dir) => {
    const unlinked: Array<{ path: string; size: number }> = [];
    const io: StoreIo = {
      ...nodeIo,
      unlink: async (path) => {
        unlinked.push({ path, size: (await stat(path)).size });
        await nodeIo.unlink!(path);
      },
    };
    const segmentBytes = SHRINK_STEP_BYTES + 1024 * 1024;
    const { store } = await openStore(dir, { segmentBytes, io });
    await store.append([{ type: 'queue-declared', name: 'tickets', settings: {} }]);

    let previous: number[] = [];
    for (let i = 0; i < 5000 && unlinked.length === 0; i++) {
      previous = await settleRound(store, previous);
      await store.whenDeleted();
    }
    await store.close();

    assert.ok(unlinked.length >= 1, 'the first segment died and was deleted');
    const [first] = unlinked;
    assert.equal(first.path, `${segmentPath(dir, 1)}${RETIRED_SUFFIX}`);
    assert.ok(first.size <= SHRINK_STEP_BYTES, `unlinked at ${first.size} bytes`);
    const names = await readdir(dir);
    assert.deepEqual(names.filter((name) => name.endsWith(RETIRED_SUFFIX)), []);
    assert.ok(!names.includes('00000000000000000001.log'));
  }));

test('a renamed dead segment a crash left is removed at the next open, unread', () =>
  withTempDir(async (dir) => {
    const { store } = await openStore(dir, { segmentBytes: 4096 });
    await store.append([{ type: 'queue-declared', name: 'tickets', settings: {} }]);
    for (let seq = 1; store.stats().segments < 2; seq++) {
      await store.append([ticket(store.allocateSeq())]);
      assert.ok(seq < 100, 'rolled within 100 appends');
    }
    await store.close();
    const inFirst: number[] = [];
    await readSegment(segmentPath(dir, 1), (record) => {
      if (record.type === 'published') inFirst.push(record.seq);
    });
    assert.ok(inFirst.length > 0);
    // As deleteNow leaves it when the process dies between the rename and the unlink.
    await rename(segmentPath(dir, 1), `${segmentPath(dir, 1)}${RETIRED_SUFFIX}`);

    const { replayed, logger, store: reopened } = await openStore(dir);
    await reopened.close();
    const replayedSeqs = replayed.flatMap((r) => (r.type === 'published' ? [r.seq] : []));
    assert.deepEqual(replayedSeqs.filter((seq) => inFirst.includes(seq)), [],
      'nothing of the renamed segment is replayed');
    assert.ok(logger.warnings.some((w) => w.msg === 'removing a dead segment a crash left half deleted'));
    assert.deepEqual((await readdir(dir)).filter((name) => name.endsWith(RETIRED_SUFFIX)), []);
  }));
