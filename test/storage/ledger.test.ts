// The ledger keeps, for every live message, what a restart needs without
// its body (issue #3): what the broker rebuilds from, and what a
// checkpoint writes.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { DEDUP_MAX_IDS } from '../../src/engine/dedup.js';
import { unpackRecent, packRecent } from '../../src/storage/checkpoint-recent.js';
import { FRAME_HEADER_BYTES } from '../../src/storage/codec.js';
import { Ledger, type LiveMessage, type SegmentState } from '../../src/storage/ledger.js';
import { randomId } from '../../src/util/random-id.js';
import type { LogRecord, PublishedRecord } from '../../src/storage/records.js';

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

function live(ledger: Ledger): LiveMessage[] {
  const seen: LiveMessage[] = [];
  ledger.forEachLive((message) => void seen.push({ ...message }));
  return seen;
}

function applier(ledger: Ledger) {
  const segment: SegmentState = { id: 1, path: 'x', size: 0, live: 0, liveBytes: 0 };
  let offset = 24;
  return (record: LogRecord) => {
    ledger.apply(record, segment, 100, offset);
    offset += 100;
  };
}

describe('ledger', () => {
  it('keeps one row per live message, in seq order, with what changed since', () => {
    const ledger = new Ledger();
    const apply = applier(ledger);
    apply({ type: 'queue-declared', name: 'q', settings: {} });
    for (let seq = 1; seq <= 6; seq++) apply(published(seq));
    apply(published(7, { availableAt: NOW + 5000 }));
    apply({ type: 'settled', seqs: [2, 5] });
    apply({ type: 'retried', seq: 3, failures: 1, availableAt: NOW + 10 });
    apply({
      type: 'moved', seq: 4, queue: 'dlq', headers: { why: 'x' },
      failures: 2, availableAt: NOW, expiresAt: null,
    });
    // A compaction copy carries every change before it: 6's retry is void.
    apply({ type: 'retried', seq: 6, failures: 3, availableAt: NOW });
    apply(published(6, { queue: 'other', failures: 3 }));
    apply({ type: 'retried', seq: 99, failures: 1, availableAt: 0 });

    assert.equal(ledger.liveMessages, 5);
    const seen = live(ledger);
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
    assert.equal(ledger.changes.size, 2, 'settled and copied messages leave no change behind');
  });

  it('keeps the newest maxIds ids of a queue, oldest first, not a copy again', () => {
    const ledger = new Ledger({ maxIds: DEDUP_MAX_IDS, defaultWindowMs: Infinity });
    const apply = applier(ledger);
    const count = DEDUP_MAX_IDS + 5;
    for (let seq = 1; seq <= count; seq++) {
      apply(published(seq, { publishedAt: NOW - count + seq }));
    }
    apply(published(count, { publishedAt: NOW })); // a copy: not an id again
    const ids = ledger.recentIds();
    assert.equal(ids.length, DEDUP_MAX_IDS);
    assert.deepEqual(ids[0], { queue: 'q', id: 'id-6', publishedAt: NOW - count + 6 });
    assert.deepEqual(ids.at(-1), { queue: 'q', id: `id-${count}`, publishedAt: NOW });
  });

  it('keeps UUIDs as bytes and other ids as given, through growth and trimming', () => {
    // Ids through several doublings of the bytes (16 places at first) and
    // trimmed past the 1,024 a move to the front waits for: every kind of
    // id comes back, in order.
    const maxIds = 1500;
    const ledger = new Ledger({ maxIds, defaultWindowMs: Infinity });
    const apply = applier(ledger);
    const kinds = [
      () => randomId(),
      () => randomId().toUpperCase(),
      (seq: number) => `order-${seq}`,
      () => `${randomId().slice(0, 35)}g`,
      (seq: number) => `${seq}`.padEnd(36, 'é'),
    ];
    const given: string[] = [];
    for (let seq = 1; seq <= 5000; seq++) {
      const id = kinds[seq % kinds.length](seq);
      given.push(id);
      apply(published(seq, { id, publishedAt: NOW + seq }));
    }

    const expected = given.slice(-maxIds);
    assert.deepEqual(ledger.recentIds().map((r) => r.id), expected);
    assert.deepEqual(ledger.recentIds().map((r) => r.publishedAt).slice(0, 2), [
      NOW + 3501, NOW + 3502,
    ]);
    // The checkpoint's copy packs to the same ids.
    const [copy] = ledger.recentSnapshot();
    const unpacked = unpackRecent(packRecent(copy).subarray(FRAME_HEADER_BYTES));
    assert.deepEqual(unpacked.ids, expected);
    assert.equal(unpacked.lastSeq, 5000);
  });

  it('keeps a row whose frame is mostly headers apart, body size exact', () => {
    const ledger = new Ledger();
    const segment: SegmentState = { id: 1, path: 'x', size: 0, live: 0, liveBytes: 0 };
    ledger.apply(published(1, { body: Buffer.alloc(10) }), segment, 70_100, 24);
    ledger.apply(published(2, { body: Buffer.alloc(10) }), segment, 200, 70_124);
    assert.deepEqual(live(ledger).map((m) => [m.seq, m.queue, m.bodyBytes, m.priority]), [
      [1, 'q', 10, 1],
      [2, 'q', 10, 2],
    ]);
    assert.equal(ledger.wide.size, 1);
    assert.deepEqual(ledger.locate(1)?.frameBytes, 70_100);
    ledger.apply({ type: 'settled', seqs: [1] }, segment, 20, 70_324);
    assert.equal(ledger.wide.size, 0);
    assert.equal(ledger.liveBytes, 200);
  });

  it('forgets ids older than the queue\'s dedup window', () => {
    const ledger = new Ledger({ maxIds: 100, defaultWindowMs: 1000 });
    const apply = applier(ledger);
    apply({ type: 'queue-declared', name: 'short', settings: { dedupWindowMs: 10 } });
    apply(published(1, { publishedAt: NOW }));
    apply(published(2, { publishedAt: NOW + 999 }));
    apply(published(3, { queue: 'short', publishedAt: NOW }));
    apply(published(4, { queue: 'short', publishedAt: NOW + 11 }));
    assert.deepEqual(ledger.recentIds().map((r) => r.id), ['id-1', 'id-2', 'id-4']);
  });

  it('takes a queue declared again, or deleted and made anew, at its next record', () => {
    // The ledger keeps the last record's queue lookups for the next one;
    // a declaration or a delete in between must not leave them stale.
    const ledger = new Ledger({ maxIds: 100, defaultWindowMs: Infinity });
    const apply = applier(ledger);
    apply({ type: 'queue-declared', name: 'q', settings: {} });
    for (let seq = 1; seq <= 3; seq++) apply(published(seq, { publishedAt: NOW + seq }));
    apply({ type: 'queue-declared', name: 'q', settings: { dedupMaxIds: 2 } });
    for (let seq = 4; seq <= 6; seq++) apply(published(seq, { publishedAt: NOW + seq }));
    assert.deepEqual(ledger.recentIds().map((r) => r.id), ['id-5', 'id-6']);

    apply({ type: 'queue-deleted', name: 'q' });
    apply({ type: 'queue-declared', name: 'q', settings: {} });
    apply(published(7, { publishedAt: NOW + 7 }));
    assert.deepEqual(ledger.recentIds().map((r) => r.id), ['id-7']);
  });
});

// A queue's `queue-deleted` record ends every message still in the queue
// (ledger.ts): the delete's write settles those it knows of, and one it
// did not name (an ack or a move that failed meanwhile) stayed live for a
// queue made again under the name to take at the next start.
describe('ledger at a queue-deleted record', () => {
  const segmentsOf = () => [1, 2, 3].map((id): SegmentState => ({
    id, path: `s${id}`, size: 0, live: 0, liveBytes: 0,
  }));
  const moved = (seq: number, queue: string): LogRecord => ({
    type: 'moved', seq, queue, headers: {}, failures: 1, availableAt: NOW, expiresAt: null,
  });
  const wideHeaders = { big: 'h'.repeat(70_000) };

  // Records in three segments, frames of 100 bytes but for the wide row
  // (70,100); the queue `q` is deleted in the third and made again.
  const before: Array<[segment: number, record: LogRecord]> = [
    [1, { type: 'queue-declared', name: 'q', settings: {} }],
    [1, { type: 'queue-declared', name: 'r', settings: {} }],
    [1, published(1)],
    [1, published(2)],
    [1, published(3, { queue: 'r' })],
    [1, published(4, { headers: wideHeaders })],
    [2, published(5)],
    [2, published(6, { queue: 'r' })],
    [2, moved(2, 'r')], // moved out of q: survives
    [2, moved(3, 'q')], // moved into q: ends with it
    [2, published(5, { queue: 'r' })], // a move written whole, out of q
    [2, published(6, { queue: 'q' })], // and one into q
    [2, published(7, { queue: 'r', headers: wideHeaders })],
    [2, moved(7, 'q')],
    [2, { type: 'settled', seqs: [1] }],
  ];
  const after: Array<[segment: number, record: LogRecord]> = [
    [3, published(8)],
    [3, { type: 'queue-deleted', name: 'q' }],
    [3, { type: 'queue-declared', name: 'q', settings: {} }],
    [3, published(9)],
    [3, { type: 'retried', seq: 4, failures: 1, availableAt: NOW }],
    [3, published(10, { queue: 'r' })],
    [3, moved(10, 'q')],
  ];

  function applyAll(
    ledger: Ledger,
    segments: SegmentState[],
    records: Array<[number, LogRecord]>,
  ): void {
    for (const [id, record] of records) {
      const segment = segments[id - 1];
      const frameBytes = record.type === 'published' && record.headers.big ? 70_100 : 100;
      ledger.apply(record, segment, frameBytes, segment.size);
      segment.size += frameBytes;
    }
  }

  // What every live message, segment and the ledger as a whole count.
  function accounts(ledger: Ledger, segments: SegmentState[]) {
    return {
      live: live(ledger).map((m) => [m.seq, m.change?.queue ?? m.queue]),
      segments: segments.map((s) => [s.id, s.live, s.liveBytes]),
      liveBytes: ledger.liveBytes,
      liveMessages: ledger.liveMessages,
    };
  }

  const expected = {
    live: [[2, 'r'], [5, 'r'], [9, 'q'], [10, 'q']],
    segments: [[1, 1, 100], [2, 1, 100], [3, 2, 200]],
    liveBytes: 400,
    liveMessages: 4,
  };

  it('forgets what is in the queue then, at replay, segment counts and all', () => {
    const ledger = new Ledger();
    const segments = segmentsOf();
    applyAll(ledger, segments, before);
    assert.deepEqual(live(ledger).map((m) => m.seq), [2, 3, 4, 5, 6, 7]);
    applyAll(ledger, segments, after);

    assert.deepEqual(accounts(ledger, segments), expected);
    assert.equal(ledger.wide.size, 0, 'the wide rows went with their messages');
    assert.deepEqual([...ledger.changes.keys()], [2, 10]);
    assert.equal(ledger.locate(4), undefined);
    assert.deepEqual(ledger.locate(9)?.segment.id, 3);
  });

  it('forgets them after a checkpoint load too, whatever order its frames come in', () => {
    for (const changesFirst of [false, true]) {
      // The ledger at the checkpoint's position, copied as checkpoint.ts
      // writes it and checkpoint-load.ts reads it back.
      const written = new Ledger();
      applyAll(written, segmentsOf(), before);
      const loaded = new Ledger();
      const segments = segmentsOf();
      written.forEachRunAfter(-1, (run) => {
        for (let i = run.from; i < run.to; i++) {
          if (run.alive[i] === 0) continue;
          const columns = run.cols.subarray(i * 4, i * 4 + 4);
          loaded.restoreRow(run.seqs.at(i), columns, segments[columns[0] - 1]);
        }
        return true;
      });
      for (const name of written.queueNames) loaded.restoreQueueName(name);
      const wide = () => {
        for (const [seq, [index, bytes]] of written.wide) loaded.restoreWide(seq, index, bytes);
      };
      const changes = () => {
        for (const [seq, change] of written.changes) loaded.restoreChange(seq, change);
      };
      if (changesFirst) {
        changes();
        wide();
      } else {
        wide();
        changes();
      }
      for (const [name, settings] of written.queues) loaded.queues.set(name, settings);

      applyAll(loaded, segments, after);
      assert.deepEqual(accounts(loaded, segments), expected, `changes first: ${changesFirst}`);
    }
  });

  it('leaves other queues alone, and a queue with none live as it was', () => {
    const ledger = new Ledger();
    const apply = applier(ledger);
    apply(published(1, { queue: 'kept' }));
    apply(published(2, { queue: 'short' }));
    apply({ type: 'settled', seqs: [2] });
    apply({ type: 'queue-deleted', name: 'short' });
    apply({ type: 'queue-deleted', name: 'never-seen' });
    assert.deepEqual(live(ledger).map((m) => [m.seq, m.queue]), [[1, 'kept']]);
  });
});
