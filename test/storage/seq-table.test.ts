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

type SpareOp =
  | { kind: 'append'; count: number }
  | { kind: 'jump' }
  | { kind: 'late'; back: number }
  | { kind: 'drain' }
  | { kind: 'deleteRun'; pick: number; count: number }
  | { kind: 'consume' };

const spareOp: fc.Arbitrary<SpareOp> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      count: fc.integer({ min: 1, max: 20_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'jump' as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('late' as const), back: fc.nat(40_000) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'drain' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('deleteRun' as const),
      pick: fc.nat(),
      count: fc.integer({ min: 1, max: 20_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'consume' as const }) },
);
const spareOps = fc.array(spareOp, { maxLength: 30 });

// A kept chunk comes back with whatever its last rows left in it: alive
// flags, columns, seqs gone over to f64. Tables that empty often (drain),
// split a full chunk for a late seq (the spare as the upper half), and
// jump past 2^32 must still show only their live rows, to every reader,
// after every step: find, forEach, forEachRunAfter from any seq, consume.
test('a table that reuses its emptied chunks shows none of their past rows', () => {
  fc.assert(
    fc.property(spareOps, fc.array(fc.nat(), { minLength: 3, maxLength: 3 }), (ops, picks) => {
      const table = new SeqTable(3, { keepSpare: true });
      const model = new Map<number, [number, number, number]>();
      const gone = new Set<number>();
      let next = 1;
      let version = 0;
      const sorted = () => [...model.keys()].sort((a, b) => a - b);
      const forget = (seq: number) => {
        model.delete(seq);
        gone.add(seq);
      };

      for (const step of ops) {
        if (step.kind === 'append' || step.kind === 'jump') {
          if (step.kind === 'jump') next = Math.max(next, 2 ** 32 - 3);
          const count = step.kind === 'jump' ? 8 : step.count;
          for (let i = 0; i < count; i++) {
            const row: [number, number, number] = [next % 5, ++version, 1];
            assert.equal(table.put(next, row), true);
            model.set(next, row);
            gone.delete(next++);
          }
        } else if (step.kind === 'late') {
          const seq = next - 1 - step.back - 0.5;
          if (seq <= 0) continue;
          const row: [number, number, number] = [9, ++version, 2];
          assert.equal(table.put(seq, row), !model.has(seq));
          model.set(seq, row);
          gone.delete(seq);
        } else if (step.kind === 'drain') {
          for (const seq of sorted()) {
            assert.equal(table.delete(seq), true);
            forget(seq);
          }
        } else if (step.kind === 'deleteRun') {
          const keys = sorted();
          const at = keys.length === 0 ? 0 : step.pick % keys.length;
          for (const seq of keys.slice(at, at + step.count)) {
            assert.equal(table.delete(seq), true);
            forget(seq);
          }
        } else {
          const seen: number[] = [];
          table.consume((seq, row) => void seen.push(seq, table.col(row, 1)));
          assert.deepEqual(seen, sorted().flatMap((seq) => [seq, model.get(seq)![1]]));
          for (const seq of sorted()) forget(seq);
        }
        agree(table, model, sorted(), gone, picks);
      }
    }),
    { numRuns: 30 },
  );
});

function agree(
  table: SeqTable,
  model: Map<number, [number, number, number]>,
  keys: number[],
  gone: Set<number>,
  picks: number[],
): void {
  assert.equal(table.size, model.size);
  const rows: number[][] = [];
  table.forEach((seq, row) => {
    rows.push([seq, table.col(row, 0), table.col(row, 1), table.col(row, 2)]);
  });
  assert.deepEqual(rows, keys.map((seq) => [seq, ...model.get(seq)!]));
  for (const seq of gone) assert.equal(table.find(seq), undefined, `gone seq ${seq} found`);

  // From before the first row, from a live row, from a gone one, between rows.
  const goneKeys = [...gone];
  const starts = [-1, 0.25];
  if (keys.length > 0) {
    starts.push(keys[picks[0] % keys.length], keys[picks[1] % keys.length] + 0.25);
  }
  if (goneKeys.length > 0) starts.push(goneKeys[picks[2] % goneKeys.length]);
  for (const after of starts) {
    const run: number[][] = [];
    table.forEachRunAfter(after, ({ seqs, cols, alive, from, to }) => {
      for (let i = from; i < to; i++) {
        if (alive[i] !== 0) run.push([seqs.at(i), cols[i * 3], cols[i * 3 + 1], cols[i * 3 + 2]]);
      }
      return true;
    });
    const expected = keys.filter((seq) => seq > after).map((seq) => [seq, ...model.get(seq)!]);
    assert.deepEqual(run, expected, `after ${after}`);
  }
}
