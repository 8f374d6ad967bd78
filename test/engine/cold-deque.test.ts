// The deques of the cold tier (cold-backlog.ts) against a sorted array:
// entries inserted anywhere (a retried or moved-in message keeps its old
// seq), removed from the middle, taken from the front, across chunk
// growth and splits. A FIFO group's deque starts at 16 entries.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { ColdDeque } from '../../src/engine/cold-backlog.js';

type Op =
  | { insert: number }
  | { push: number }
  | { remove: number }
  | { shift: number };

describe('ColdDeque', () => {
  it('keeps seq order and counts through inserts, removals and shifts', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            { arbitrary: fc.record({ insert: fc.integer({ min: 1, max: 40_000 }) }), weight: 4 },
            { arbitrary: fc.record({ push: fc.integer({ min: 1, max: 3_000 }) }), weight: 2 },
            { arbitrary: fc.record({ remove: fc.nat() }), weight: 2 },
            { arbitrary: fc.record({ shift: fc.integer({ min: 1, max: 3_000 }) }), weight: 1 },
          ),
          { maxLength: 60 },
        ),
        (ops: Op[]) => {
          const deque = new ColdDeque();
          let model: number[] = [];
          let next = 50_000;
          for (const op of ops) {
            if ('insert' in op) {
              if (model.includes(op.insert)) continue;
              deque.insert(op.insert, op.insert % 1000);
              model.push(op.insert);
              model.sort((a, b) => a - b);
            } else if ('push' in op) {
              // A run of new publishes at the tail, across chunk boundaries.
              for (let k = 0; k < op.push; k++) {
                deque.insert(++next, next % 1000);
                model.push(next);
              }
            } else if ('remove' in op) {
              if (model.length === 0) continue;
              const seq = model[op.remove % model.length];
              assert.equal(deque.remove(seq), seq % 1000);
              assert.equal(deque.remove(seq), -1, 'removed once');
              model = model.filter((s) => s !== seq);
            } else {
              const seqs: number[] = [];
              const sizes: number[] = [];
              deque.shift(op.shift, Number.POSITIVE_INFINITY, seqs, sizes);
              assert.deepEqual(seqs, model.slice(0, op.shift));
              assert.deepEqual(sizes, seqs.map((s) => s % 1000));
              model = model.slice(op.shift);
            }
            assert.equal(deque.count, model.length);
            assert.equal(deque.peek(), model[0]);
          }
          const all: number[] = [];
          deque.forEach((seq) => void all.push(seq));
          assert.deepEqual(all, model);
          for (const seq of model.slice(0, 20)) assert.ok(deque.has(seq));
          assert.equal(deque.bytes, model.reduce((n, s) => n + (s % 1000), 0));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('finds a seq that came back beside its own removed entry', () => {
    const deque = new ColdDeque();
    for (const seq of [1, 2, 3]) deque.push(seq, 10);
    deque.remove(2);
    deque.insert(2, 20);
    assert.ok(deque.has(2));
    assert.equal(deque.remove(2), 20);
    assert.equal(deque.has(2), false);
  });

  it('keeps seq order once every entry was removed (a lower seq comes back)', () => {
    const deque = new ColdDeque();
    for (const seq of [5, 6]) deque.push(seq, 10);
    deque.remove(5);
    deque.remove(6);
    assert.equal(deque.count, 0);
    // A retried message with a lower seq: it must be found, and come first.
    deque.insert(1, 30);
    assert.ok(deque.has(1));
    assert.equal(deque.peek(), 1);
    deque.push(7, 40);
    const seqs: number[] = [];
    const sizes: number[] = [];
    deque.shift(10, Infinity, seqs, sizes);
    assert.deepEqual(seqs, [1, 7]);
    assert.deepEqual(sizes, [30, 40]);
  });
});
