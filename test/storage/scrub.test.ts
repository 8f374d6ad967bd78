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
import { seededRandom } from '../helpers.js';
import {
  type RecordingLogger,
  checkpointingOptions,
  recordingLogger,
  ticket,
  withTempDir,
} from './helpers.js';

const SEGMENT_BYTES = 128 * 1024;
const MESSAGES = 3000;
const REGION_FOUND = 'scrub found a corrupt region of segment';
const SEED = Number(process.env.USHER_FAULT_SEED ?? Date.now() % 1_000_000);
const random = seededRandom(SEED);

/** A log of about a dozen segments, closed cleanly: a checkpoint covers all of it. */
async function filled(
  dir: string,
  messages = MESSAGES,
  segmentBytes = SEGMENT_BYTES,
): Promise<void> {
  const store = await LogStore.open(checkpointingOptions(dir, { segmentBytes }), () => {});
  for (let seq = 1; seq <= messages; seq += 100) {
    const records: LogRecord[] = [];
    for (let i = seq; i < seq + 100; i++) records.push(ticket(i));
    // Every tenth message settled: frames in the log that no message needs.
    const settled = records.map((_, i) => seq + i).filter((s) => s % 10 === 0);
    records.push({ type: 'settled', seqs: settled });
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

/** What a full replay of `dir` (checkpoints ignored) finds: damage and live seqs. */
async function fullReplay(dir: string): Promise<{ corruptRegions: number; live: Set<number> }> {
  const store = await LogStore.open(
    checkpointingOptions(dir, { checkpoints: { enabled: false } }),
    () => {},
  );
  const live = new Set<number>();
  store.forEachLive((message) => void live.add(message.seq));
  const { corruptRegions } = store.stats();
  await store.close();
  return { corruptRegions, live };
}

// A scrub after a start from the checkpoint must find what a full replay
// of the same log finds: as many damaged stretches, and as lost exactly
// the live messages the replay no longer has. (The replay may have more:
// damage to a `settled` record brings its message back.)
async function assertScrubMatchesReplay(dir: string, context: string): Promise<void> {
  const before = new Set<number>();
  for (let seq = 1; seq <= MESSAGES; seq++) if (seq % 10 !== 0) before.add(seq);
  const replay = await fullReplay(dir);
  const lost = [...before].filter((seq) => !replay.live.has(seq));

  const { store, damaged } = await reopen(dir);
  try {
    await store.whenScrubbed();
    const stats = store.stats();
    assert.equal(stats.openedFromCheckpoint, 1, context);
    assert.equal(stats.corruptRegions, replay.corruptRegions, context);
    assert.deepEqual(damaged.map((m) => m.seq).sort((a, b) => a - b), lost, context);
  } finally {
    await store.close();
  }
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

        const region = logger.errors.find((e) => e.msg === REGION_FOUND);
        assert.equal(region?.obj.file, target);
        assert.equal(region?.obj.offset, victim.offset);
        assert.equal(region?.obj.reason, 'frame checksum mismatch');
        const hit = logger.errors.find((e) => e.msg === 'live messages hit by damage in the log');
        assert.deepEqual(hit?.obj, {
          file: target, queue: 'tickets', messages: 1, seqs: [victim.seq],
        });

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

  it(`finds what a full replay finds, for random flips and tears (seed ${SEED})`, async () => {
    const rounds = process.env.USHER_SOAK === '1' ? 40 : 6;
    for (let round = 0; round < rounds; round++) {
      await withTempDir(async (dir) => {
        await filled(dir);
        // Not the last segment: a full replay cuts a torn tail there.
        const segments = (await listSegments(dir)).slice(0, -1);
        const places: string[] = [];
        for (let hit = 0; hit < 1 + Math.floor(random() * 3); hit++) {
          const { path } = segments[Math.floor(random() * segments.length)];
          const bytes = await readFile(path);
          // Past the header: a bad header makes replay refuse the segment.
          const at = 24 + Math.floor(random() * (bytes.length - 24));
          if (random() < 0.5) {
            bytes[at] ^= 1 << Math.floor(random() * 8);
            places.push(`flip ${path}@${at}`);
          } else {
            const length = 1 + Math.floor(random() * 3000);
            bytes.fill(random() < 0.5 ? 0 : 0xff, at, Math.min(at + length, bytes.length));
            places.push(`tear ${path}@${at}+${length}`);
          }
          await writeFile(path, bytes);
        }
        await assertScrubMatchesReplay(dir, `seed ${SEED}, round ${round}: ${places.join(', ')}`);
      });
    }
  });

  it('finds a stretch longer than its search window as replay does', async () => {
    await withTempDir(async (dir) => {
      // Two segments of about 8 MiB, 5 MiB zeroed inside the first.
      await filled(dir, 20_000, 8 * 1024 * 1024);
      const [first] = await listSegments(dir);
      const bytes = await readFile(first.path);
      bytes.fill(0, 1000, 1000 + 5 * 1024 * 1024);
      await writeFile(first.path, bytes);

      const replay = await fullReplay(dir);
      assert.equal(replay.corruptRegions, 1);
      const { store, damaged } = await reopen(dir);
      try {
        await store.whenScrubbed();
        assert.equal(store.stats().corruptRegions, 1);
        const lost = damaged.map((m) => m.seq);
        assert.ok(lost.length > 9000, `${lost.length} lost`);
        for (const seq of lost) assert.ok(!replay.live.has(seq), `seq ${seq}`);
        assert.equal(lost.length + replay.live.size, 18_000);
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

  it('says it had nothing to check when the log has no sealed segment', async () => {
    await withTempDir(async (dir) => {
      // A fresh log: its one segment is the active one, which no scrub reads.
      const { store, logger } = await reopen(dir);
      try {
        await store.append([ticket(1)]);
        assert.equal(store.scrub(), true);
        await store.whenScrubbed();
        assert.equal(store.stats().scrubbedBytes, 0);
        const said = logger.infos.map((e) => e.msg);
        assert.ok(said.includes('scrub had nothing to check: no sealed segment yet'), said.join('; '));
        assert.ok(!said.includes('scrub found no damage'));
      } finally {
        await store.close();
      }
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
        const regions = logger.errors.filter((e) => e.msg === REGION_FOUND);
        assert.deepEqual(regions.map((e) => e.obj.file), [paths[3]]);
      } finally {
        await store.close();
      }
    });
  });
});
