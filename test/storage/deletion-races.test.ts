// Dead segments are deleted beside the write loop (src/storage/
// dead-segments.ts) while batches land, segments roll, compaction copies
// pinned messages forward, checkpoints are written and scrubs read. Seeded
// random schedules of that, with unlinks that hang, fail or find the file
// gone, then a close (often while one hangs) and two reopens: nothing
// confirmed and unsettled may be missing, no segment may look lost, and
// once unlink works again the dead segments go.
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { nodeIo, type StoreIo } from '../../src/storage/io.js';
import { LogStore } from '../../src/storage/log-store.js';
import type { LogRecord, PublishedRecord } from '../../src/storage/records.js';
import { checkpointingOptions, ticket, withTempDir } from './helpers.js';

const SEEDS = 6;
const MODES = ['ok', 'hold', 'EACCES', 'EIO', 'ENOENT', 'gone'] as const;
type UnlinkMode = (typeof MODES)[number];

// xorshift32: the same schedule for a seed on every run.
function random32(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/** nodeIo whose unlink does what `mode` says: 'gone' unlinks, then says ENOENT. */
class UnlinkIo {
  mode: UnlinkMode = 'ok';
  readonly #held: Array<() => void> = [];
  readonly io: StoreIo = {
    ...nodeIo,
    unlink: async (path) => {
      const mode = this.mode;
      if (mode === 'hold') await new Promise<void>((resolve) => this.#held.push(resolve));
      if (mode === 'EACCES' || mode === 'EIO' || mode === 'ENOENT') throw errno(mode);
      await nodeIo.unlink!(path);
      if (mode === 'gone') throw errno('ENOENT');
    },
  };

  release(): void {
    for (const resolve of this.#held.splice(0)) resolve();
  }
}

function errno(code: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${code}: simulated failure, unlink`);
  err.code = code;
  return err;
}

for (let seed = 1; seed <= SEEDS; seed++) {
  test(`deletion beside the write loop loses nothing (seed ${seed})`, { timeout: 60_000 }, () => {
    return withTempDir(async (dir) => {
      const random = random32(seed * 7919);
      const unlinks = new UnlinkIo();
      // The broker's view of live messages, for compaction's copies.
      const current = new Map<number, PublishedRecord>();
      const options = checkpointingOptions(dir, {
        segmentBytes: 8 * 1024,
        io: unlinks.io,
        snapshotMessage: (seq) => current.get(seq),
        checkpoints: { minBytes: 16 * 1024, ratio: 1 },
      });
      const store = await LogStore.open(options, () => {});
      await store.append([{ type: 'queue-declared', name: 'tickets', settings: {} }]);

      const confirmed = new Set<number>();
      const settled = new Set<number>();
      const pinned = new Set<number>();
      const pending: Promise<void>[] = [];
      let open: number[] = [];
      const send = (records: LogRecord[], seqs: number[], settle: number[], sync: boolean) => {
        return store.append(records, { sync }).then(() => {
          for (const seq of seqs) confirmed.add(seq);
          for (const seq of settle) settled.add(seq);
        });
      };
      const round = (faults: boolean) => {
        const r = random();
        if (faults && r < 0.08) unlinks.mode = MODES[Math.floor(random() * MODES.length)];
        else if (r < 0.12) unlinks.release();
        else if (r < 0.14) store.scrub();
        const seqs = Array.from({ length: 1 + Math.floor(random() * 12) }, () => {
          const seq = store.allocateSeq();
          current.set(seq, ticket(seq));
          return seq;
        });
        const records: LogRecord[] = seqs.map((seq) => current.get(seq)!);
        // Most are settled a round later; a few stay pinned for long.
        for (const seq of open) if (faults && random() < 0.02) pinned.add(seq);
        const settle = open.filter((seq) => !pinned.has(seq));
        if (!faults || random() < 0.01) {
          settle.push(...pinned);
          pinned.clear();
        }
        for (const seq of settle) current.delete(seq);
        if (settle.length > 0) records.push({ type: 'settled', seqs: settle });
        open = seqs;
        return send(records, seqs, settle, !faults || random() < 0.8);
      };

      const rounds = 300 + Math.floor(random() * 300);
      for (let i = 0; i < rounds; i++) {
        const landed = round(true);
        if (random() < 0.5) await landed;
        else pending.push(landed);
      }
      await Promise.all(pending);

      // Unlink works again: a few rounds later the dead segments are gone.
      unlinks.mode = 'ok';
      unlinks.release();
      for (let i = 0; i < 4; i++) await round(false);
      await store.whenDeleted();
      assert.ok(store.stats().segments <= 3, `${store.stats().segments} segments`);

      // Closing while a deletion hangs waits for it.
      if (random() < 0.5) unlinks.mode = 'hold';
      for (let i = 0; i < 3; i++) await round(false);
      const closed = store.close();
      const releasing = setInterval(() => unlinks.release(), 5);
      await closed;
      clearInterval(releasing);
      const names = await readdir(dir);
      const logs = names.filter((name) => name.endsWith('.log'));
      let bytes = 0;
      for (const name of logs) bytes += (await stat(join(dir, name))).size;
      assert.equal(store.stats().segments, logs.length, names.join(" "));
      assert.equal(store.stats().diskBytes, bytes);

      // From the checkpoint, then by replaying the whole log.
      for (const checkpoints of [true, false]) {
        const reopenOptions = checkpointingOptions(dir);
        if (!checkpoints) reopenOptions.checkpoints = undefined;
        const reopened = await LogStore.open(reopenOptions, () => {});
        const live = new Set<number>();
        reopened.forEachLive((message) => live.add(message.seq));
        await reopened.close();
        assert.equal(reopened.stats().missingSegments, 0);
        for (const seq of confirmed) {
          if (!settled.has(seq)) assert.ok(live.has(seq), `confirmed ${seq} lost`);
          else assert.ok(!live.has(seq), `settled ${seq} live again`);
        }
      }
    });
  });
}
