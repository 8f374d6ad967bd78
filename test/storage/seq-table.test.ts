import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SeqColumn } from '../../src/storage/seq-column.js';
import { SeqTable } from '../../src/storage/seq-table.js';

type Op =
  | { kind: 'append' }
  | { kind: 'late'; back: number }
  | { kind: 'update'; pick: number }
  | { kind: 'delete'; pick: number }
  | { kind: 'deleteRun'; pick: number; count: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ kind: 'append' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('late' as const), back: fc.nat(5000) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('update' as const), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('deleteRun' as const),
      pick: fc.nat(),
      count: fc.integer({ min: 1, max: 20_000 }),
    }),
  },
);

// The table against a Map through random appends, late inserts, copies
// (a second put for a live seq), single deletes and long runs of deletes
// that empty and squeeze whole chunks.
// Seqs start at 1, or just below 2^32, where a chunk's seqs outgrow u32
// and it goes over to f64 with its rows in it (seq-column.ts); late seqs
// of x.5 do the same anywhere.
test('the table agrees with a Map through any mix of puts and deletes', () => {
  const start = fc.constantFrom(1, 2 ** 32 - 2000);
  fc.assert(
    fc.property(fc.array(op, { maxLength: 400 }), fc.integer({ min: 1, max: 3000 }), start,
      fc.boolean(), (ops, n, first, keepSpare) => {
      const burst = n;
      const table = new SeqTable(2, { keepSpare });
      const model = new Map<number, [number, number]>();
      let next = first;
      let version = 0;
      const sorted = () => [...model.keys()].sort((a, b) => a - b);

      for (const step of ops) {
        if (step.kind === 'append') {
          for (let i = 0; i < burst; i++) {
            const row: [number, number] = [next % 7, ++version];
            assert.equal(table.put(next, row), true);
            model.set(next++, row);
          }
        } else if (step.kind === 'late') {
          const seq = next - 1 - step.back - 0.5;
          if (seq <= 0) continue;
          const row: [number, number] = [9, ++version];
          assert.equal(table.put(seq, row), !model.has(seq));
          model.set(seq, row);
        } else if (model.size > 0) {
          const keys = sorted();
          const at = step.pick % keys.length;
          if (step.kind === 'update') {
            const row: [number, number] = [3, ++version];
            assert.equal(table.put(keys[at], row), false);
            model.set(keys[at], row);
          } else {
            const count = step.kind === 'delete' ? 1 : step.count;
            for (const seq of keys.slice(at, at + count)) {
              assert.equal(table.delete(seq), true);
              model.delete(seq);
              assert.equal(table.delete(seq), false);
            }
          }
        }
      }

      assert.equal(table.size, model.size);
      const seen: Array<[number, number, number]> = [];
      table.forEach((seq, row) => void seen.push([seq, table.col(row, 0), table.col(row, 1)]));
      assert.deepEqual(seen, sorted().map((seq) => [seq, ...model.get(seq)!]));
      for (const [seq, [a, b]] of model) {
        const row = table.find(seq);
        assert.ok(row !== undefined, `seq ${seq} missing`);
        assert.deepEqual([table.col(row, 0), table.col(row, 1)], [a, b]);
      }
      assert.equal(table.find(next), undefined);
      assert.equal(table.find(0.25), undefined);
    }),
    { numRuns: 60 },
  );
});

test('settled rows give their chunks back', () => {
  const table = new SeqTable(3);
  for (let seq = 1; seq <= 200_000; seq++) table.put(seq, [1, 2, 3]);
  const full = table.chunkCount;
  assert.ok(full >= 12, `${full} chunks`);

  for (let seq = 1; seq <= 190_000; seq++) table.delete(seq);
  assert.equal(table.size, 10_000);
  assert.ok(table.chunkCount <= 2, `${table.chunkCount} chunks left`);
  assert.ok(table.has(190_001) && table.has(200_000) && !table.has(190_000));
});

// The ledger's table empties each time a queue's consumer has acked all it
// was sent, hundreds of times a second at a steady 5,000 msg/s; a chunk
// of its own each time was 200 MB/s of typed arrays (seq-table.ts).
test('a table with keepSpare makes no new chunk each time it empties and refills', () => {
  const kept = new SeqTable(4, { keepSpare: true });
  const plain = new SeqTable(4);
  for (let seq = 1; seq <= 1_000; seq++) {
    for (const table of [kept, plain]) {
      table.put(seq, [seq, 1, 2, 3]);
      assert.equal(table.find(seq) !== undefined, true);
      table.delete(seq);
      assert.equal(table.size, 0);
    }
  }
  assert.equal(kept.chunksMade, 1);
  assert.equal(plain.chunksMade, 1_000);

  // The reused chunk holds nothing of its past rows.
  kept.put(5_000, [7, 7, 7, 7]);
  assert.equal(kept.has(1_000), false);
  const rows: number[] = [];
  kept.forEach((seq, row) => void rows.push(seq, kept.col(row, 0)));
  assert.deepEqual(rows, [5_000, 7]);
});

test('a seq column keeps 4 bytes a seq below 2^32 and goes over to 8 intact', () => {
  const column = new SeqColumn(4);
  column.set(0, 1);
  column.set(1, 2 ** 32 - 1);
  assert.equal(column.byteLength, 16);
  column.set(2, 2 ** 32);
  assert.equal(column.byteLength, 32);
  column.set(3, 7.5);
  assert.deepEqual([0, 1, 2, 3].map((i) => column.at(i)), [1, 2 ** 32 - 1, 2 ** 32, 7.5]);

  const narrow = new SeqColumn(4);
  narrow.set(0, 5);
  narrow.copyFrom(column, 1, 4, 1);
  assert.deepEqual([0, 1, 2, 3].map((i) => narrow.at(i)), [5, 2 ** 32 - 1, 2 ** 32, 7.5]);
  narrow.copyWithin(0, 2, 4);
  assert.deepEqual([0, 1].map((i) => narrow.at(i)), [2 ** 32, 7.5]);
});
