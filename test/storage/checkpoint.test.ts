// Checkpoints (issue #3): a restart from a checkpoint must end in exactly
// the state a full replay of the same log reaches, whatever the log did
// after the checkpoint, and a checkpoint that is damaged in any way must
// be passed over for an older one or a full replay.

import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { listCheckpoints } from '../../src/storage/checkpoint-file.js';
import { crc32c } from '../../src/storage/crc32c.js';
import { LogStore, type LogStoreOptions } from '../../src/storage/log-store.js';
import type { LogRecord } from '../../src/storage/records.js';
import { checkpointingOptions, recordingLogger, ticket, withTempDir } from './helpers.js';

const options = checkpointingOptions;

/** Everything a restart rebuilds from, in a form deepEqual can compare. */
function stateOf(store: LogStore) {
  const live: unknown[] = [];
  store.forEachLive((message) => void live.push({ ...message }));
  return { live, recent: store.recentIds(), queues: [...store.queues] };
}

async function open(dir: string, extra: Partial<LogStoreOptions> = {}) {
  const records: LogRecord[] = [];
  const store = await LogStore.open(options(dir, extra), (record) => void records.push(record));
  return { store, records };
}

/** The state a full replay of `dir` reaches, checkpoints ignored. */
async function fullReplay(dir: string) {
  const { store } = await open(dir, { checkpoints: { enabled: false } });
  const state = stateOf(store);
  await store.close();
  return state;
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), 'timed out');
}

// A mix of everything the log holds: publishes, settles, retries, moves,
// a second queue declared and one deleted.
async function workload(store: LogStore, from: number, count: number): Promise<void> {
  const pending: Promise<void>[] = [];
  for (let seq = from; seq < from + count; seq++) {
    const published = ticket(seq, seq % 3 === 0 ? 'other' : 'tickets');
    // Now and then headers too large for the packed row (ledger.ts, WIDE).
    if (seq % 397 === 0) published.headers = { big: 'h'.repeat(70_000) };
    const records: LogRecord[] = [published];
    if (seq % 5 === 0) records.push({ type: 'settled', seqs: [seq - 3] });
    if (seq % 7 === 0) records.push({ type: 'retried', seq: seq - 2, failures: 1, availableAt: seq });
    if (seq % 11 === 0) {
      records.push({
        type: 'moved', seq: seq - 1, queue: 'dlq', headers: { reason: 'x' },
        failures: 2, availableAt: seq, expiresAt: null,
      });
    }
    pending.push(store.append(records));
    if (pending.length >= 50) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
}

async function declare(store: LogStore): Promise<void> {
  await store.append([
    { type: 'queue-declared', name: 'tickets', settings: {} },
    { type: 'queue-declared', name: 'other', settings: { priority: true } },
    { type: 'queue-declared', name: 'dlq', settings: {} },
    { type: 'queue-declared', name: 'gone', settings: {} },
  ]);
}

async function checkpointNames(dir: string): Promise<string[]> {
  return listCheckpoints(await readdir(dir), dir).map((file) => file.path);
}

describe('checkpoints', () => {
  it('a clean close leaves one, and the next open replays nothing', async () => {
    await withTempDir(async (dir) => {
      const { store } = await open(dir);
      await declare(store);
      await workload(store, 1, 2000);
      await store.close();

      const reopened = await open(dir);
      assert.equal(reopened.records.length, 0);
      assert.equal(reopened.store.stats().openedFromCheckpoint, 1);
      const state = stateOf(reopened.store);
      await reopened.store.close();
      const expected = await fullReplay(dir);
      assert.deepEqual(state, expected);
      assert.ok(expected.live.length > 1000);
    });
  });

  it('a crash after checkpoints written under load ends where a full replay does', async () => {
    await withTempDir(async (dir) => {
      const { store } = await open(dir, { segmentBytes: 256 * 1024 });
      await declare(store);
      await workload(store, 1, 3000);
      await until(() => store.stats().checkpointsWritten >= 2);
      await workload(store, 3000, 1500);
      await store.append([{ type: 'queue-deleted', name: 'gone' }]);
      // The process dies here: a copy of the folder as it is, no close.
      const crashed = `${dir}-crashed`;
      await copyFolder(dir, crashed);
      try {
        const expected = await fullReplay(crashed);
        const reopened = await open(crashed);
        assert.equal(reopened.store.stats().openedFromCheckpoint, 1);
        assert.ok(reopened.records.length > 0, 'the log after the checkpoint was replayed');
        assert.deepEqual(stateOf(reopened.store), expected);
        assert.ok(!expected.queues.some(([name]) => name === 'gone'));
        await reopened.store.close();
      } finally {
        await rm(crashed, { recursive: true, force: true });
      }
      await store.close();
    });
  });

  for (const damage of ['flipped bit', 'truncated', 'unknown version', 'no end frame'] as const) {
    it(`one with a ${damage} is ignored: the previous one or a full replay is used`, async () => {
      await withTempDir(async (dir) => {
        const { store } = await open(dir);
        await declare(store);
        await workload(store, 1, 1500);
        await store.close();
        const second = await open(dir);
        await workload(second.store, 1500, 500);
        await second.store.close();
        const expected = await fullReplay(dir);
        const [newest, previous] = await checkpointNames(dir);
        assert.ok(previous !== undefined, 'two checkpoints are kept');

        await harm(newest, damage);
        const logger = recordingLogger();
        const reopened = await open(dir, { logger });
        assert.deepEqual(stateOf(reopened.store), expected);
        assert.ok(
          logger.warnings.some((w) => w.msg.startsWith('checkpoint ignored') && w.obj.file === newest),
          JSON.stringify(logger.warnings),
        );
        assert.ok(logger.infos.some((i) => i.msg === 'checkpoint loaded' && i.obj.file === previous));
        await reopened.store.close();

        // The start above wrote one of its own at close (it replayed the
        // log after `previous`). All damaged: a full replay, still the
        // same state.
        for (const path of await checkpointNames(dir)) {
          if (path !== newest) await harm(path, damage);
        }
        const last = await open(dir);
        assert.equal(last.store.stats().openedFromCheckpoint, 0);
        assert.deepEqual(stateOf(last.store), expected);
        await last.store.close();
      });
    });
  }

  it('in `os` mode one is put in place only once a synced batch made its rows durable', async () => {
    await withTempDir(async (dir) => {
      const { store } = await open(dir);
      await declare(store);
      // One unsynced batch past the threshold: a checkpoint begins after
      // it, and must wait, since the rows it holds are only in the OS.
      const batch = Array.from({ length: 400 }, (_, i) => ticket(i + 1));
      await store.append(batch, { sync: false });
      const syncs = store.stats().syncs;
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(store.stats().checkpointsWritten, 0, 'a checkpoint named unsynced records');
      assert.deepEqual(await checkpointNames(dir), []);

      // The next batch, unsynced as it asks, is synced for the checkpoint.
      await store.append([ticket(401)], { sync: false });
      await until(() => store.stats().checkpointsWritten === 1);
      assert.equal(store.stats().syncs, syncs + 1);
      assert.equal((await checkpointNames(dir)).length, 1);
      await store.close();
    });
  });

  it('one whose segments were compacted and deleted since still opens right', async () => {
    await withTempDir(async (dir) => {
      // Compaction copies the messages that pin the oldest segment.
      const live = new Map<number, ReturnType<typeof ticket>>();
      const compacting = () => options(dir, {
        segmentBytes: 64 * 1024,
        checkpoints: { minBytes: 2 ** 40 },
        snapshotMessage: (seq) => live.get(seq),
      });
      let store = await LogStore.open(compacting(), () => undefined);
      await store.append([{ type: 'queue-declared', name: 'tickets', settings: {} }]);
      for (let seq = 1; seq <= 600; seq++) {
        live.set(seq, ticket(seq));
        await store.append([ticket(seq)]);
      }
      await store.close();
      const before = await checkpointNames(dir);
      assert.equal(before.length, 1);

      // Settle all but every 50th message: garbage outweighs the live
      // data, compaction copies the survivors forward and the segments
      // the checkpoint names go.
      store = await LogStore.open(compacting(), () => undefined);
      for (let seq = 1; seq <= 600; seq++) {
        if (seq % 50 === 0) continue;
        live.delete(seq);
        await store.append([{ type: 'settled', seqs: [seq] }]);
      }
      for (let seq = 601; seq <= 900; seq++) await store.append([ticket(seq)]);
      for (let seq = 601; seq <= 900; seq++) await store.append([{ type: 'settled', seqs: [seq] }]);
      assert.ok(store.stats().compactedMessages > 0, 'nothing was compacted');
      const crashed = `${dir}-crashed`;
      await copyFolder(dir, crashed);
      await store.close();
      try {
        const expected = await fullReplay(crashed);
        const logger = recordingLogger();
        const reopened = await open(crashed, { logger });
        assert.equal(reopened.store.stats().openedFromCheckpoint, 1);
        // Recent ids differ: the checkpoint still knows those of the
        // publishes in the deleted segments, a full replay cannot.
        const state = stateOf(reopened.store);
        assert.deepEqual([state.live, state.queues], [expected.live, expected.queues]);
        assert.deepEqual(
          (expected.live as Array<{ seq: number }>).map((m) => m.seq),
          Array.from({ length: 12 }, (_, i) => 50 * (i + 1)),
        );
        await reopened.store.close();
      } finally {
        await rm(crashed, { recursive: true, force: true });
      }
    });
  });

  it('a deleted queue\'s messages left live end at its delete, their segments with them', async () => {
    await withTempDir(async (dir) => {
      const { store } = await open(dir, { segmentBytes: 64 * 1024 });
      await declare(store);
      // Messages its delete did not settle (an ack that failed meanwhile).
      for (let seq = 1; seq <= 40; seq++) await store.append([ticket(seq, 'gone')]);
      const churn = async (from: number, to: number) => {
        for (let seq = from; seq < to; seq++) {
          await store.append([ticket(seq), { type: 'settled', seqs: [seq] }]);
        }
      };
      await churn(41, 400);
      await until(() => store.stats().checkpointsWritten >= 1);
      await store.append([{ type: 'queue-deleted', name: 'gone' }]);
      assert.equal(store.stats().liveMessages, 0);
      // A crash now: the checkpoint holds them, the log after it their end.
      const justDeleted = await crashImage(dir, '-deleted');

      // Nothing pins the segments that held them now.
      await churn(400, 700);
      await until(() => store.stats().segments <= 3);
      assert.ok(!(await readdir(dir)).includes('00000000000000000001.log'));
      const later = await crashImage(dir, '-later');
      await store.close();
      try {
        for (const crashed of [justDeleted, later]) {
          const expected = await fullReplay(crashed);
          assert.deepEqual(expected.live, [], crashed);
          const reopened = await open(crashed);
          assert.equal(reopened.store.stats().openedFromCheckpoint, 1);
          const state = stateOf(reopened.store);
          assert.deepEqual([state.live, state.queues], [expected.live, expected.queues]);
          await reopened.store.close();
        }
      } finally {
        for (const crashed of [justDeleted, later]) await rm(crashed, { recursive: true, force: true });
      }
    });
  });
});

// A copy of the folder as a crash would leave it. The store is still
// running: a checkpoint it renames or deletes meanwhile is simply missed.
async function copyFolder(from: string, to: string): Promise<void> {
  await mkdir(to);
  for (const name of await readdir(from)) {
    await copyFile(join(from, name), join(to, name)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
}

/** A crash copy of `dir` beside it; the caller removes it. */
async function crashImage(dir: string, suffix: string): Promise<string> {
  await copyFolder(dir, `${dir}${suffix}`);
  return `${dir}${suffix}`;
}

async function harm(path: string, damage: 'flipped bit' | 'truncated' | 'unknown version' | 'no end frame') {
  const bytes = await readFile(path);
  switch (damage) {
    case 'flipped bit':
      bytes[Math.floor(bytes.length / 2)] ^= 0x10;
      await writeFile(path, bytes);
      return;
    case 'truncated':
      await truncate(path, Math.floor(bytes.length / 3));
      return;
    case 'unknown version':
      // A well-formed header of a version this build does not know.
      bytes.writeUInt32LE(99, 8);
      bytes.writeUInt32LE(crc32c(bytes.subarray(0, 12)), 12);
      await writeFile(path, bytes);
      return;
    case 'no end frame':
      await truncate(path, bytes.length - 17);
      return;
  }
}
