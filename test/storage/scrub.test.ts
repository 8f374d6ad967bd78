// The scrub of the segments a checkpoint covers (src/storage/scrub.ts):
// damage there is not read at a start from the checkpoint, so the scrub
// must find it after open, without open waiting for it, count it with
// the damage replay finds, and name the live messages it cost.

import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { describe, it } from 'node:test';

import {
  type DamagedMessage,
  LogStore,
  type LogStoreOptions,
} from '../../src/storage/log-store.js';
import type { LogRecord } from '../../src/storage/records.js';
import { listSegments, readSegment } from '../../src/storage/segment-file.js';
import {
  type RecordingLogger,
  checkpointingOptions,
  recordingLogger,
  ticket,
  withTempDir,
} from './helpers.js';

const SEGMENT_BYTES = 128 * 1024;
const MESSAGES = 3000;

/** A log of about a dozen segments, closed cleanly: a checkpoint covers all of it. */
async function filled(dir: string): Promise<void> {
  const store = await LogStore.open(
    checkpointingOptions(dir, { segmentBytes: SEGMENT_BYTES }),
    () => {},
  );
  for (let seq = 1; seq <= MESSAGES; seq += 100) {
    const records: LogRecord[] = [];
    for (let i = seq; i < seq + 100; i++) records.push(ticket(i));
    // Every tenth message settled: frames in the log that no message needs.
    records.push({ type: 'settled', seqs: records.map((_, i) => seq + i).filter((s) => s % 10 === 0) });
    await store.append(records);
  }
  await store.close();
}

interface Frame {
  seq: number | undefined;
  offset: number;
  frameBytes: number;
}

async function framesOf(path: string): Promise<Frame[]> {
  const frames: Frame[] = [];
  await readSegment(path, (record, frameBytes, offset) => {
    frames.push({ seq: record.type === 'published' ? record.seq : undefined, offset, frameBytes });
  });
  return frames;
}

interface Reopened {
  store: LogStore;
  logger: RecordingLogger;
  damaged: DamagedMessage[];
  /** The store's figures as open() resolved, before any later turn. */
  atOpen: ReturnType<LogStore['stats']>;
}

async function reopen(dir: string, extra: Partial<LogStoreOptions> = {}): Promise<Reopened> {
  const logger = recordingLogger();
  const damaged: DamagedMessage[] = [];
  const store = await LogStore.open(
    checkpointingOptions(dir, {
      segmentBytes: SEGMENT_BYTES,
      logger,
      onDamagedMessages: (messages) => void damaged.push(...messages),
      ...extra,
    }),
    () => {},
  );
  return { store, logger, damaged, atOpen: store.stats() };
}

// Open resolved from the checkpoint with the scrub started but not a
// byte checked: it did not wait for the scrub.
function assertOpenedBeforeScrub({ atOpen }: Reopened): void {
  assert.equal(atOpen.openedFromCheckpoint, 1);
  assert.equal(atOpen.replayedRecords, 0);
  assert.equal(atOpen.scrubRunning, 1);
  assert.equal(atOpen.scrubbedBytes, 0);
  assert.equal(atOpen.corruptRegions, 0);
}

async function flipNearEnd(path: string): Promise<void> {
  const bytes = await readFile(path);
  bytes[bytes.length - 30] ^= 0x01;
  await writeFile(path, bytes);
}

async function totalBytes(paths: string[]): Promise<number> {
  let total = 0;
  for (const path of paths) total += (await stat(path)).size;
  return total;
}

describe('scrub after a start from a checkpoint', () => {
  it('finds a flipped bit in a covered segment and names the message it cost', async () => {
    await withTempDir(async (dir) => {
      await filled(dir);
      const segments = await listSegments(dir);
      assert.ok(segments.length >= 8, `${segments.length} segments`);
      const target = segments[2].path;
      const victim = (await framesOf(target)).find((f) => f.seq !== undefined && f.seq % 10 === 3)!;
      const bytes = await readFile(target);
      bytes[victim.offset + 40] ^= 0x10;
      await writeFile(target, bytes);

      const opened = await reopen(dir);
      const { store, logger, damaged } = opened;
      try {
        assertOpenedBeforeScrub(opened);
        await store.whenScrubbed();

        const stats = store.stats();
        assert.equal(stats.scrubRunning, 0);
        assert.equal(stats.scrubsCompleted, 1);
        assert.equal(stats.corruptRegions, 1);
        assert.equal(stats.scrubCorruptRegions, 1);
        assert.equal(stats.scrubDamagedMessages, 1);
        assert.deepEqual(damaged, [{ seq: victim.seq, queue: 'tickets' }]);

        const region = logger.errors.find((e) => e.msg === 'scrub found a corrupt region of segment');
        assert.equal(region?.obj.file, target);
        assert.equal(region?.obj.offset, victim.offset);
        assert.equal(region?.obj.reason, 'frame checksum mismatch');
        const lost = logger.errors.find((e) => e.msg === 'live messages lost to damage in the log');
        assert.deepEqual(lost?.obj, { file: target, queue: 'tickets', messages: 1, seqs: [victim.seq] });

        // Never handed out with a wrong body; its neighbours are whole.
        const [read, next] = store.readPublished([victim.seq!, victim.seq! + 1]);
        assert.equal(read, undefined);
        assert.deepEqual(next?.body, ticket(victim.seq! + 1).body);
      } finally {
        await store.close();
      }
    });
  });

  it('finds a torn stretch and every live message whose frame it touches', async () => {
    await withTempDir(async (dir) => {
      await filled(dir);
      const segments = await listSegments(dir);
      const target = segments[4].path;
      const frames = await framesOf(target);
      const from = frames[20].offset + 100;
      const to = from + 4000;
      const bytes = await readFile(target);
      bytes.fill(0, from, to);
      await writeFile(target, bytes);
      const hit = frames
        .filter((f) => f.seq !== undefined && f.seq % 10 !== 0)
        .filter((f) => f.offset < to && from < f.offset + f.frameBytes)
        .map((f) => f.seq);

      const opened = await reopen(dir);
      const { store, damaged } = opened;
      try {
        assertOpenedBeforeScrub(opened);
        await store.whenScrubbed();
        assert.ok(hit.length >= 8, `${hit.length} messages hit`);
        assert.deepEqual(damaged.map((m) => m.seq), hit);
        assert.equal(store.stats().corruptRegions, 1);
        assert.equal(store.stats().scrubDamagedMessages, hit.length);
      } finally {
        await store.close();
      }
    });
  });

  it('reports nothing for a clean log, having read every covered byte', async () => {
    await withTempDir(async (dir) => {
      await filled(dir);
      const paths = (await listSegments(dir)).map((s) => s.path);
      const covered = await totalBytes(paths);

      const opened = await reopen(dir);
      const { store, logger, damaged } = opened;
      try {
        assertOpenedBeforeScrub(opened);
        await store.whenScrubbed();
        const stats = store.stats();
        assert.equal(stats.scrubsCompleted, 1);
        assert.equal(stats.scrubbedBytes, covered);
        assert.equal(stats.corruptRegions, 0);
        assert.equal(stats.scrubDamagedMessages, 0);
        assert.deepEqual(damaged, []);
        assert.deepEqual(logger.errors, []);
        assert.ok(logger.infos.some((e) => e.msg === 'scrub found no damage'));
      } finally {
        await store.close();
      }
    });
  });

  it('stops at close in the middle of a scrub', async () => {
    await withTempDir(async (dir) => {
      await filled(dir);
      const covered = await totalBytes((await listSegments(dir)).map((s) => s.path));

      const { store, logger } = await reopen(dir);
      while (store.stats().scrubbedBytes === 0) await new Promise(setImmediate);
      assert.equal(store.stats().scrubRunning, 1);
      await store.close();

      const stats = store.stats();
      assert.equal(stats.scrubRunning, 0);
      assert.equal(stats.scrubsCompleted, 0);
      assert.ok(stats.scrubbedBytes < covered, `${stats.scrubbedBytes} of ${covered}`);
      assert.ok(logger.infos.some((e) => e.msg === 'scrub stopped before the end'));
      assert.deepEqual(logger.errors, []);
      assert.equal(store.scrub(), false);
    });
  });

  it('is not run when asked not to, nor after a full replay', async () => {
    await withTempDir(async (dir) => {
      await filled(dir);
      const off = await reopen(dir, { scrubAfterOpen: false });
      assert.equal(off.atOpen.scrubRunning, 0);
      await off.store.close();

      const replayed = await reopen(dir, { checkpoints: { enabled: false } });
      assert.equal(replayed.atOpen.scrubRunning, 0);
      await replayed.store.close();
      assert.equal(replayed.store.stats().scrubbedBytes, 0);
    });
  });

  it('scrubs every sealed segment on demand, counting each stretch once', async () => {
    await withTempDir(async (dir) => {
      await filled(dir);
      const paths = (await listSegments(dir)).map((s) => s.path);
      await flipNearEnd(paths[1]);

      // A full replay finds that damage itself: the scrub does not count it again.
      const { store, logger } = await reopen(dir, { checkpoints: { enabled: false } });
      try {
        assert.equal(store.stats().corruptRegions, 1);
        assert.equal(store.scrub(), true);
        assert.equal(store.scrub(), false, 'one scrub at a time');
        await store.whenScrubbed();
        let stats = store.stats();
        assert.equal(stats.scrubsCompleted, 1);
        assert.equal(stats.scrubbedBytes, await totalBytes(paths));
        assert.equal(stats.corruptRegions, 1);
        assert.equal(stats.scrubCorruptRegions, 0);

        // Damage that came while the broker ran is found by the next one.
        await flipNearEnd(paths[3]);
        assert.equal(store.scrub(), true);
        await store.whenScrubbed();
        stats = store.stats();
        assert.equal(stats.scrubsCompleted, 2);
        assert.equal(stats.corruptRegions, 2);
        assert.equal(stats.scrubCorruptRegions, 1);
        const regions = logger.errors.filter((e) => e.msg === 'scrub found a corrupt region of segment');
        assert.deepEqual(regions.map((e) => e.obj.file), [paths[3]]);
      } finally {
        await store.close();
      }
    });
  });
});
