// Replay into compact rows (issue #3): what the broker rebuilds from.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ReplayState, type ReplayedRow } from '../../src/broker/recovery.js';
import { DEDUP_MAX_IDS } from '../../src/engine/dedup.js';
import type { PublishedRecord } from '../../src/storage/records.js';

const NOW = 1_700_000_000_000;

function published(seq: number, fields: Partial<PublishedRecord> = {}): PublishedRecord {
  return {
    type: 'published',
    seq,
    queue: 'q',
    id: `id-${seq}`,
    priority: seq % 10,
    group: null,
    headers: {},
    body: Buffer.alloc(seq % 7),
    publishedAt: NOW - 1000,
    availableAt: NOW - 1000,
    expiresAt: null,
    failures: 0,
    ...fields,
  };
}

function rows(replay: ReplayState): ReplayedRow[] {
  const seen: ReplayedRow[] = [];
  replay.drain((row) => void seen.push({ ...row }));
  return seen;
}

describe('replay state', () => {
  it('keeps one row per live message, in seq order, with what changed since', () => {
    const replay = new ReplayState(NOW);
    replay.apply({ type: 'queue-declared', name: 'q', settings: {} });
    for (let seq = 1; seq <= 6; seq++) replay.apply(published(seq));
    replay.apply(published(7, { availableAt: NOW + 5000 }));
    replay.apply({ type: 'settled', seqs: [2, 5] });
    replay.apply({ type: 'retried', seq: 3, failures: 1, availableAt: NOW + 10 });
    replay.apply({
      type: 'moved', seq: 4, queue: 'dlq', headers: { why: 'x' },
      failures: 2, availableAt: NOW, expiresAt: null,
    });
    // A compaction copy carries every change before it: 6's retry is void.
    replay.apply({ type: 'retried', seq: 6, failures: 3, availableAt: NOW });
    replay.apply(published(6, { queue: 'other', failures: 3 }));
    replay.apply({ type: 'retried', seq: 99, failures: 1, availableAt: 0 });

    assert.equal(replay.messages, 5);
    const seen = rows(replay);
    const fields = seen.map((r) => [r.seq, r.queue, r.priority, r.bodyBytes, r.delayed]);
    assert.deepEqual(fields, [
      [1, 'q', 1, 1, false],
      [3, 'q', 3, 3, false],
      [4, 'q', 4, 4, false],
      [6, 'other', 6, 6, false],
      [7, 'q', 7, 0, true],
    ]);
    assert.deepEqual(seen[1].change, { failures: 1, availableAt: NOW + 10 });
    assert.deepEqual(seen[2].change, {
      queue: 'dlq', headers: { why: 'x' }, failures: 2, availableAt: NOW, expiresAt: null,
    });
    assert.equal(seen[3].change, undefined);
    assert.equal(replay.messages, 0, 'drain empties the state');
  });

  it('keeps the newest DEDUP_MAX_IDS ids of a queue, oldest first', () => {
    const replay = new ReplayState(NOW);
    const count = DEDUP_MAX_IDS + 5;
    for (let seq = 1; seq <= count; seq++) {
      replay.apply(published(seq, { publishedAt: NOW - count + seq }));
    }
    replay.apply(published(3, { publishedAt: NOW })); // a copy: not an id again
    const ids = replay.recentIds;
    assert.equal(ids.length, DEDUP_MAX_IDS);
    assert.deepEqual(ids[0], { queue: 'q', id: 'id-6', publishedAt: NOW - count + 6 });
    assert.deepEqual(ids.at(-1), { queue: 'q', id: `id-${count}`, publishedAt: NOW });
  });
});
