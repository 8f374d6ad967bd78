// A batch reads each record's id once into its UuidTable (uuid-bytes.ts);
// the frames and the ledger copy the bytes from there, and the encoder
// keeps the last queue name it measured (codec.ts). They must come out as
// if each record were encoded alone, whatever the ids and queues, and a
// table a landed batch gave back must not leak its ids into the next.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';

import { Batch } from '../../src/storage/batch.js';
import { encodeRecord } from '../../src/storage/codec.js';
import { Ledger, type SegmentState } from '../../src/storage/ledger.js';
import type { LogRecord, PublishedRecord } from '../../src/storage/records.js';

// UUIDs (lower-case ones are written as 16 bytes), ones a char away from
// that, and other strings.
const ids = fc.oneof(
  fc.uuid().map((id) => id.toLowerCase()),
  fc.uuid(),
  fc
    .tuple(
      fc.uuid().map((id) => id.toLowerCase()),
      fc.nat({ max: 35 }),
      fc.constantFrom('g', '-', 'A'),
    )
    .map(([id, at, unit]) => id.slice(0, at) + unit + id.slice(at + 1)),
  fc.string({ maxLength: 40 }),
);

// A priority of 0.5 makes a type 3 record, which has no UUID form. Queue
// names longer than the encoder keeps, and not ASCII, interleaved.
const published = fc.record({
  id: ids,
  priority: fc.constantFrom(0, 3, 0.5),
  queue: fc.constantFrom('q', 'orders', 'é-queue', 'x'.repeat(200)),
});

interface Spec {
  id: string;
  priority: number;
  queue?: string;
}

function records(specs: Spec[], fromSeq: number): LogRecord[] {
  return specs.map(({ id, priority, queue = 'q' }, i): PublishedRecord => ({
    type: 'published',
    seq: fromSeq + i,
    queue,
    id,
    priority,
    group: null,
    headers: {},
    body: Buffer.from(`body ${i}`),
    publishedAt: 1_000 + i,
    availableAt: 1_000 + i,
    expiresAt: null,
    failures: 0,
  }));
}

function segment(): SegmentState {
  return { id: 1, path: 'segment-1', size: 0, live: 0, liveBytes: 0 };
}

/** Adds `calls` to a batch, lands it in `ledger` with the batch's table; returns the frames. */
function land(calls: LogRecord[][], ledger: Ledger): Buffer {
  const batch = new Batch();
  for (const call of calls) {
    batch.add([{ type: 'settled', seqs: [1] }, ...call]);
  }
  const frames = Buffer.concat(batch.buffers());
  const place = segment();
  let offset = 0;
  for (let i = 0; i < batch.records.length; i++) {
    ledger.apply(batch.records[i], place, batch.frameBytes[i], offset, batch.ids, i);
    offset += batch.frameBytes[i];
  }
  batch.resolve();
  return frames;
}

function ledgerOf(): Ledger {
  const ledger = new Ledger({ maxIds: 1_000, defaultWindowMs: 1e9 });
  ledger.apply({ type: 'queue-declared', name: 'q', settings: {} }, segment(), 0, 0);
  return ledger;
}

test('frames and recent ids from a batch are those of records encoded and applied alone', () => {
  fc.assert(
    fc.property(
      fc.array(fc.array(published, { maxLength: 6 }), { minLength: 1, maxLength: 4 }),
      (specs) => {
        let seq = 10;
        const calls = specs.map((call) => {
          const made = records(call, seq);
          seq += call.length;
          return made;
        });

        const fromBatch = ledgerOf();
        const frames = land(calls, fromBatch);

        const alone = ledgerOf();
        const expected: Buffer[] = [];
        let offset = 0;
        for (const record of calls.flatMap((call) => [
          { type: 'settled', seqs: [1] } as LogRecord,
          ...call,
        ])) {
          const frame = encodeRecord(record);
          expected.push(frame);
          alone.apply(record, segment(), frame.length, offset);
          offset += frame.length;
        }
        assert.deepEqual(frames, Buffer.concat(expected));
        assert.deepEqual(fromBatch.recentIds(), alone.recentIds());
      },
    ),
    { numRuns: 500 },
  );
});

test('a batch after one that landed reads its own ids, not the ones its table held', () => {
  const ledger = ledgerOf();
  const uuids = ['0f8fad5b-d9cb-469f-a165-70867728950e', '7c9e6679-7425-40de-944b-e07fc1f90ae7'];
  land([records(uuids.map((id) => ({ id, priority: 0 })), 1)], ledger);

  // Likely handed the table above: entries 1 and 2 held UUIDs there.
  land([records([{ id: 'not-a-uuid', priority: 0 }, { id: 'x', priority: 0.5 }], 3)], ledger);

  assert.deepEqual(
    ledger.recentIds().map((recent) => recent.id),
    [...uuids, 'not-a-uuid', 'x'],
  );
});
