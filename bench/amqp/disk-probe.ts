// A side measurement for the latency rounds of bench/amqp-compare.ts: how
// long an fdatasync takes on the disk Usher's data folder is on, when
// appends of a given size are synced at a given pace (what Usher's log
// did in the round just before, read from its /metrics). It runs between
// rounds, never beside one, so it measures the disk and disturbs nothing.

import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/** A probe never runs longer than this, however slow the disk. */
const PROBE_LIMIT_MS = 5_000;

/**
 * Appends `bytes` and fdatasyncs, `perSecond` times a second for
 * `seconds` (at once after a sync that took longer than its turn), to a
 * fresh file in the temporary folder (where the bench puts Usher's
 * data). Returns each fdatasync's time in ms.
 */
export async function probeSyncs(bytes: number, perSecond: number,
  seconds: number): Promise<Float64Array> {
  const dir = mkdtempSync(join(tmpdir(), 'usher-sync-probe-'));
  const count = Math.max(1, Math.round(perSecond * seconds));
  const times = new Float64Array(count);
  const body = Buffer.alloc(Math.max(1, Math.round(bytes)), 'x');
  const file = await open(join(dir, 'probe'), 'wx');
  let done = 0;
  try {
    const began = performance.now();
    let position = 0;
    for (; done < count; done++) {
      const due = began + done * 1000 / perSecond;
      const now = performance.now();
      if (now - began > PROBE_LIMIT_MS) break;
      if (due > now) await sleep(due - now);
      await file.write(body, 0, body.length, position);
      position += body.length;
      const syncing = performance.now();
      await file.datasync();
      times[done] = performance.now() - syncing;
    }
  } finally {
    await file.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return times.subarray(0, done);
}
