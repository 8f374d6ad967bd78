// SIGKILL while dead segments are being deleted in steps (dead-segments.ts:
// renamed to .dead, cut from the end, unlinked). The rename is what keeps
// a crash from bringing settled messages back: a segment cut short under
// its own name would replay its publishes without the settles that were
// cut off. After every kill: every settle that was confirmed stays
// settled, every publish confirmed and not settled is there, nothing is
// damaged, and no .dead file is left.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import { type ConfirmedTraffic, assertConfirmedKept, withTempDir } from './helpers.js';

const CHILD = fileURLToPath(new URL('./retire-child.js', import.meta.url));
const KILLS = Number(process.env.USHER_CRASH_ROUNDS ?? 6);
// About twelve rounds of traffic a segment, cut in 8 KiB steps: with a
// segment dying every few milliseconds, most kills land mid-deletion.
const SEGMENT_BYTES = 64 * 1024;
const STEP_BYTES = 8 * 1024;

/** Runs the child until it has confirmed `rounds` appends and a little more, then kills it. */
function runAndKill(
  dir: string, rounds: number, books: ConfirmedTraffic,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, String(SEGMENT_BYTES), String(STEP_BYTES)],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let pending = '';
    let seen = 0;
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      const lines = (pending + text).split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        const { published, settled } = JSON.parse(line) as { published: number[]; settled: number[] };
        for (const seq of published) books.published.add(seq);
        for (const seq of settled) books.settled.add(seq);
        books.lastRound = published;
        if (++seen === rounds) child.kill('SIGKILL');
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', reject);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

test(`settled messages stay settled across ${KILLS} kills during stepped deletions`, () =>
  withTempDir(async (dir) => {
    const books: ConfirmedTraffic = { published: new Set(), settled: new Set(), lastRound: [] };
    for (let kill = 1; kill <= KILLS; kill++) {
      await runAndKill(dir, 150 + Math.floor(Math.random() * 150), books);

      // The child may have finished an append it was killed before
      // reporting (assertConfirmedKept allows for it).
      const context = `kill ${kill}`;
      await assertConfirmedKept(dir, books, { segmentBytes: SEGMENT_BYTES }, context);
      assert.ok(books.settled.size > 1000, `${context}: enough traffic to delete segments`);
    }
  }));
