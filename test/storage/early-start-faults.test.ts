// Early batch start (write-loop.ts, EARLY_START_BYTES) under failing I/O:
// turns that gather several batches' worth of appends, in `fsync` and
// `os` mode mixed, in segments that roll mid-turn, while writes fail
// whole or half-written and syncs fail. Whatever the log answered must be
// what a restart reads: every confirmed append there, in call order, and
// no rejected one.

import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { test } from 'node:test';

import { frameBytes } from '../../src/storage/codec.js';
import { EARLY_START_BYTES } from '../../src/storage/log-store.js';
import { seededRandom } from '../helpers.js';
import { FaultyIo, openStore, replayOf, ticket, withTempDir } from './helpers.js';

const ROUNDS = 6;
const TURNS = 12;

interface Sent {
  seqs: number[];
  outcome: 'waiting' | 'confirmed' | 'rejected';
}

test('what a log of early-started batches confirms under faults is what it replays', async () => {
  let rejected = 0;
  let rolls = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const random = seededRandom(round + 1);
    await withTempDir(async (dir) => {
      const io = new FaultyIo();
      // A segment holds about two early-started batches: rolls fall
      // between the batches of one turn.
      const { store } = await openStore(dir, { io, segmentBytes: EARLY_START_BYTES * 2 });
      const sent: Sent[] = [];
      let seq = 0;

      for (let turn = 0; turn < TURNS; turn++) {
        // One fault at a time: a second one waiting could fail the
        // cut-back after the first, and a store that cannot cut back stops.
        const fault = random();
        if (fault < 0.12) io.failNext('writev', 'EIO');
        else if (fault < 0.24) io.failNext('writev', 'ENOSPC', true);
        else if (fault < 0.36) io.failNext('fdatasync', 'EIO');
        const faulty = fault < 0.36;

        // Up to three early starts' worth in one turn, a few records an append.
        let last: Promise<void> = Promise.resolve();
        const turnBytes = Math.floor(random() * 3 * EARLY_START_BYTES);
        for (let bytes = 0; bytes < turnBytes;) {
          const records = Array.from({ length: 1 + Math.floor(random() * 4) }, () =>
            ticket(++seq));
          for (const record of records) bytes += frameBytes(record);
          const entry: Sent = { seqs: records.map((r) => r.seq), outcome: 'waiting' };
          sent.push(entry);
          last = store.append(records, { sync: random() < 0.7 }).then(
            () => void (entry.outcome = 'confirmed'),
            () => void (entry.outcome = 'rejected'),
          );
        }
        // After a fault, and every other turn or so, the turn's batches
        // land (in call order: with the last append) before the next.
        if (faulty || random() < 0.5) await last;
      }
      await store.close();
      for (let i = 0; i < 5; i++) await nextTurn();

      assert.equal(sent.filter((entry) => entry.outcome === 'waiting').length, 0,
        `round ${round}: every append answered by close`);
      rejected += sent.filter((entry) => entry.outcome === 'rejected').length;
      rolls += store.stats().segments - 1;
      const confirmed = sent.filter((e) => e.outcome === 'confirmed').flatMap((e) => e.seqs);
      const { replayed } = await replayOf(dir);
      const seqs = replayed.map((record) => (record.type === 'published' ? record.seq : -1));
      assert.deepEqual(seqs, confirmed, `round ${round}: replay is the confirmed appends`);
    });
  }
  assert.ok(rejected > 0, 'some batches failed');
  assert.ok(rolls >= ROUNDS, 'segments rolled');
});
