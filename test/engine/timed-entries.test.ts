// Timed entries (timed-entries.ts) come out earliest first, then by seq,
// whatever order they went in and whichever left from the middle:
// checked against a sorted list.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { TimedEntries } from '../../src/engine/timed-entries.js';
import type { Message, TimedEntry } from '../../src/engine/types.js';

function entry(at: number, seq: number): TimedEntry {
  const message = { seq } as Message;
  return { at, message, index: -1 };
}

const order = (a: TimedEntry, b: TimedEntry) => a.at - b.at || a.message.seq - b.message.seq;

describe('timed entries', () => {
  it('come out by time then seq, in order or not, with removals', () => {
    fc.assert(fc.property(
      fc.array(fc.oneof(
        // Mostly later times (leases of one length); sometimes earlier.
        fc.record({ after: fc.integer({ min: -3, max: 5 }) }),
        fc.record({ pop: fc.constant(true) }),
        fc.record({ remove: fc.nat() }),
      ), { maxLength: 300 }),
      (steps) => {
        const entries = new TimedEntries();
        let model: TimedEntry[] = [];
        let at = 1000;
        let pushed = 0;
        for (const step of steps) {
          if ('after' in step) {
            at += step.after;
            // Seqs mostly rise; every fifth goes back below the last two.
            // No two are equal, as no message is timed twice at once: a
            // tie of time and seq has no order to check against.
            pushed += 1;
            const seq = pushed % 5 === 0 ? pushed * 10 - 25 : pushed * 10;
            const e = entry(at, seq);
            entries.push(e);
            model.push(e);
          } else if ('pop' in step) {
            model.sort(order);
            const expected = model.shift();
            assert.equal(entries.peek(), expected);
            assert.equal(entries.pop(), expected);
            if (expected !== undefined) assert.equal(expected.index, -1);
          } else if (model.length > 0) {
            const e = model[step.remove % model.length];
            assert.equal(entries.remove(e), true);
            assert.equal(e.index, -1);
            assert.equal(entries.remove(e), false);
            model = model.filter((other) => other !== e);
          }
          assert.equal(entries.size, model.length);
        }
        model.sort(order);
        for (const expected of model) assert.equal(entries.pop(), expected);
        assert.equal(entries.pop(), undefined);
      },
    ), { numRuns: 300 });
  });

  it('equal times come out by seq, the lower first, after a removal', () => {
    const entries = new TimedEntries();
    const pushed = [entry(1000, 10), entry(999, 20), entry(996, 30), entry(995, 40)];
    for (const e of pushed) entries.push(e);
    assert.equal(entries.remove(pushed[0]), true);
    const late = [entry(995, 25), entry(999, 60)];
    for (const e of late) entries.push(e);
    const order = [late[0], pushed[3], pushed[2], pushed[1], late[1]];
    for (const expected of order) assert.equal(entries.pop(), expected);
    assert.equal(entries.pop(), undefined);
  });

  it('keeps leases of one length in a run: acked in order, nothing moves', () => {
    const entries = new TimedEntries();
    const leases = Array.from({ length: 3000 }, (_, i) => entry(1000 + (i >> 4), i + 1));
    for (const lease of leases) entries.push(lease);
    assert.ok(leases.every((lease) => lease.index <= -2));
    for (const lease of leases.slice(0, 2000)) assert.equal(entries.remove(lease), true);
    assert.equal(entries.peek(), leases[2000]);
    assert.equal(entries.size, 1000);
  });
});
