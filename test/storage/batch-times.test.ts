// The store's batch times (usher_store_batch_seconds): each batch counted
// once, from its write starting to its landing, so a disk slow to sync
// shows in the upper buckets.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { heldDisk } from '../helpers.js';
import { openStore, ticket, withTempDir } from './helpers.js';

/** Observations in buckets whose upper bound is above `seconds`. */
function slowerThan(counts: Float64Array, bounds: readonly number[], seconds: number): number {
  let slow = 0;
  for (let i = 0; i < counts.length; i++) {
    const lower = i === 0 ? 0 : bounds[i - 1];
    if (lower >= seconds) slow += counts[i];
  }
  return slow;
}

test('every batch is timed once, and a held sync shows as a slow batch', () => {
  return withTempDir(async (dir) => {
    const disk = heldDisk();
    const { store } = await openStore(dir, { io: disk.io });
    const times = store.batchTimes;
    const before = times.count;

    await store.append([ticket(1)]);
    await store.append([ticket(2)]);
    assert.equal(times.count - before, 2);
    assert.equal(slowerThan(times.counts, times.bounds, 0.05), 0);

    disk.hold();
    const held = store.append([ticket(3)]);
    await new Promise((resolve) => setTimeout(resolve, 120));
    disk.release();
    await held;

    assert.equal(times.count - before, 3);
    assert.equal(slowerThan(times.counts, times.bounds, 0.1), 1, 'the held batch took over 0.1 s');
    assert.ok(times.sumSeconds >= 0.1);
    await store.close();
  });
});

test('a synced batch started while another syncs is counted as overlapped', () => {
  return withTempDir(async (dir) => {
    const disk = heldDisk();
    const { store } = await openStore(dir, { io: disk.io, syncsInFlight: 2 });
    const overlapped = () => store.stats().syncsOverlapped;

    // One after another: each starts with nothing in flight.
    await store.append([ticket(1)]);
    await store.append([ticket(2)]);
    assert.equal(overlapped(), 0);

    disk.hold();
    const first = store.append([ticket(3)]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const second = store.append([ticket(4)]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(overlapped(), 0, 'counted as it lands, as syncs are');
    disk.release();
    await Promise.all([first, second]);

    assert.equal(overlapped(), 1, 'the second started beside the held first');
    assert.equal(store.stats().syncs >= 4, true);
    await store.close();
  });
});
