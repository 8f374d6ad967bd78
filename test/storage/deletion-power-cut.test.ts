// A power cut while dead segments are deleted in steps (dead-segments.ts:
// renamed to .dead, the folder synced, cut from the end, unlinked). Unlike
// a SIGKILL (deletion-crash.test.ts), a power cut can lose a rename its
// folder's sync did not cover while keeping a cut that came after it
// (power-cut.ts, `metadata`): a segment cut short under its own name,
// whose publishes would replay without the settles cut from its end.
// After each cut, on the disk as the cut could leave it: every settle
// that was confirmed stays settled, every publish confirmed and not
// settled is there, nothing is damaged, and no .dead file is left.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { seededRandom } from '../helpers.js';
import {
  type ConfirmedTraffic, assertConfirmedKept, openStore, settleRound, withTempDir,
} from './helpers.js';
import { PowerCutIo, type PowerCutMode } from './power-cut.js';

const CUTS = Number(process.env.USHER_CRASH_ROUNDS ?? 6);
// About twelve rounds of traffic a segment, cut in 8 KiB steps with 5 ms
// between them: once segments die, most cuts land mid-deletion.
const SEGMENT_BYTES = 64 * 1024;
const STEP_BYTES = 8 * 1024;
// The cut is armed after this many settled rounds, not after a fixed time:
// a cold or loaded machine made too little traffic in 60 ms to delete any
// segment, and the run proved nothing (it failed once in CI that way).
const ROUNDS_BEFORE_ARMING = 40;

/** Traffic on a fresh log until the power goes, `afterMs` after enough rounds landed. */
async function runUntilCut(
  dir: string, io: PowerCutIo, afterMs: number,
): Promise<ConfirmedTraffic> {
  const books: ConfirmedTraffic = { published: new Set(), settled: new Set(), lastRound: [] };
  const { store } = await openStore(dir, {
    io, segmentBytes: SEGMENT_BYTES, shrinkStepBytes: STEP_BYTES,
  });
  await store.append([{ type: 'queue-declared', name: 'tickets', settings: {} }]);

  let armCut = (): void => {};
  const cut = new Promise<'cut'>((resolve) => {
    armCut = () => setTimeout(() => {
      io.cut();
      resolve('cut');
    }, afterMs);
  });
  let previous: number[] = [];
  for (let round = 1; ; round++) {
    // An append that lands after the cut never answers (power-cut.ts).
    const landed = await Promise.race([settleRound(store, previous), cut]);
    if (landed === 'cut') break;
    for (const seq of previous) books.settled.add(seq);
    for (const seq of landed) books.published.add(seq);
    books.lastRound = landed;
    previous = landed;
    if (round === ROUNDS_BEFORE_ARMING) armCut();
  }
  await io.settled();
  return books;
}

for (const mode of ['drop', 'torn', 'zeros'] as PowerCutMode[]) {
  test(`settled messages stay settled across ${CUTS} power cuts during stepped deletions (${mode})`,
    async () => {
      for (let round = 1; round <= CUTS; round++) {
        const seed = Math.floor(Math.random() * 2 ** 31);
        // Seeded, so that a failure names the seed that made it.
        const random = seededRandom(seed);
        const context = `${mode}, cut ${round}, seed ${seed}`;
        await withTempDir(async (dir) => {
          const io = new PowerCutIo({ metadata: true });
          const books = await runUntilCut(dir, io, Math.floor(random() * 140));

          await withTempDir(async (image) => {
            await io.image(dir, image, mode, random);
            await assertConfirmedKept(image, books, { segmentBytes: SEGMENT_BYTES }, context);
            assert.ok(books.settled.size > 300, `${context}: enough traffic to delete segments`);
          });
        });
      }
    });
}
