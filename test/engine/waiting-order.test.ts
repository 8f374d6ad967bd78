// WaitingOrder (waiting-order.ts) on its own: the order messages became
// waiting, per priority, through stale entries, compaction and growth.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { WaitingOrder } from '../../src/engine/waiting-order.js';

/** Seqs that wait, with their wait number; the queue's side of the look-up. */
class Waiting {
  readonly numbers = new Map<number, number>();
  readonly order = new WaitingOrder((seq, order) =>
    this.numbers.get(seq) === order ? seq % 7 : -1);

  wait(priority: number, seq: number): void {
    const live = [...this.numbers.keys()].length + 1;
    this.numbers.set(seq, this.order.push(priority, seq, live));
  }

  seqs(priority: number): number[] {
    return [...this.order.ofPriority(priority)].map((victim) => victim.seq);
  }
}

describe('WaitingOrder', () => {
  it('walks each priority in the order its messages became waiting', () => {
    const w = new Waiting();
    for (const [priority, seq] of [[0, 5], [1, 1], [0, 3], [0, 9]]) w.wait(priority, seq);
    assert.deepEqual(w.seqs(0), [5, 3, 9]);
    assert.deepEqual(w.seqs(1), [1]);
    assert.deepEqual([...w.order.ofPriority(0)][0], { seq: 5, priority: 0, bytes: 5 });

    // 5 is delivered, then retried: it waits again, behind 9.
    w.numbers.delete(5);
    w.wait(0, 5);
    assert.deepEqual(w.seqs(0), [3, 9, 5]);
  });

  it('keeps the order of live entries when stale ones are compacted away', () => {
    const w = new Waiting();
    // Many messages come and go; a few stay. Pushes past twice the live
    // count plus 1,024 compact the ring.
    const kept: number[] = [];
    for (let seq = 1; seq <= 10_000; seq++) {
      w.wait(0, seq);
      if (seq % 1_000 === 0) kept.push(seq);
      else w.numbers.delete(seq);
    }
    assert.deepEqual(w.seqs(0), kept);

    // A kept one leaves and comes back: last now.
    w.numbers.delete(kept[0]);
    w.wait(0, kept[0]);
    assert.deepEqual(w.seqs(0), [...kept.slice(1), kept[0]]);
  });

  it('never names a stale entry, even one whose seq waits again with another number', () => {
    const w = new Waiting();
    for (let round = 0; round < 3_000; round++) {
      w.wait(2, 1);
      w.wait(2, 2);
      w.numbers.delete(1);
    }
    assert.deepEqual(w.seqs(2), [1, 2].filter((seq) => w.numbers.has(seq)));
    w.wait(2, 1);
    assert.deepEqual(w.seqs(2), [2, 1]);
  });
});
