// Power cuts under turns that each gather several early-started batches
// (write-loop.ts, EARLY_START_BYTES), `fsync` and `os` appends mixed, in
// segments that roll between the batches of a turn. After the cut the
// disk keeps each file up to its last fdatasync, then drops, tears or
// zeroes the rest (power-cut.ts). The next open must read a prefix of
// what was appended, in call order, holding every append confirmed in
// `fsync` mode, and every `os` append confirmed before one of those.
// Run twice: synced batches written then fdatasynced, and written and
// synced in one call where no write without a sync lies before them
// (StoreIo.openDataSync).

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';

import { frameBytes } from '../../src/storage/codec.js';
import { EARLY_START_BYTES } from '../../src/storage/log-store.js';
import { seededRandom } from '../helpers.js';
import { openStore, replayOf, ticket, withTempDir } from './helpers.js';
import { PowerCutIo, type PowerCutMode } from './power-cut.js';

const ROUNDS = 6;
const MAX_TURNS = 40;
const MODES: PowerCutMode[] = ['drop', 'torn', 'zeros'];

test('a power cut under early-started batches keeps every fsync-confirmed append', () =>
  cutsUnderEarlyStarts({ dataSync: false }));

test('the same with batches written and synced in one call', () =>
  cutsUnderEarlyStarts({ dataSync: true }));

async function cutsUnderEarlyStarts({ dataSync }: { dataSync: boolean }): Promise<void> {
  let syncedConfirmed = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const random = seededRandom(100 + round);
    const mode = MODES[round % MODES.length];
    await withTempDir(async (dir) => {
      const io = new PowerCutIo({ dataSync });
      const { store } = await openStore(dir, { io, segmentBytes: EARLY_START_BYTES * 2 });
      let seq = 0;
      // The highest seq whose append was confirmed in `fsync` mode.
      let mustKeep = 0;

      // Cut once this many batches have landed, whatever the machine's speed.
      const cutAfterBatches = 2 + Math.floor(random() * 10);
      for (let turn = 0; turn < MAX_TURNS && store.stats().batches < cutAfterBatches; turn++) {
        const turnBytes = Math.floor(random() * 3 * EARLY_START_BYTES);
        let last: Promise<unknown> = Promise.resolve();
        for (let bytes = 0; bytes < turnBytes;) {
          const records = Array.from({ length: 1 + Math.floor(random() * 4) }, () =>
            ticket(++seq));
          for (const record of records) bytes += frameBytes(record);
          const sync = random() < 0.5;
          const highest = seq;
          last = store.append(records, { sync }).then(() => {
            if (sync && !io.isCut) mustKeep = Math.max(mustKeep, highest);
          });
        }
        if (random() < 0.5) await last;
        else await sleep(0);
      }
      io.cut();
      await io.settled();

      await withTempDir(async (image) => {
        await io.image(dir, image, mode, random);
        const { replayed, store: reopened } = await replayOf(image);
        const seqs = replayed.map((record) => (record.type === 'published' ? record.seq : -1));
        const context = `round ${round}, mode ${mode}`;
        assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1),
          `${context}: a prefix of the appends, in call order`);
        assert.ok(seqs.length >= mustKeep,
          `${context}: ${seqs.length} records kept, fsync-confirmed up to ${mustKeep}`);
        assert.equal(reopened.stats().corruptRegions, 0, `${context}: damage before the tail`);
        syncedConfirmed += mustKeep;
      });
    });
  }
  assert.ok(syncedConfirmed > 0, 'some fsync appends were confirmed before a cut');
}
