// Ready messages (ready-messages.ts) come out highest priority first, then
// lowest seq, whatever order they went in and whichever were taken out
// from the middle, and list so without coming out: checked against a
// sorted list.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { ReadyMessages } from '../../src/engine/ready-messages.js';
import type { Message, Slots } from '../../src/engine/types.js';

function message(seq: number, priority: number): Message {
  return {
    seq, id: `m${seq}`, priority, group: null, headers: {}, body: Buffer.alloc(0),
    publishedAt: 0, availableAt: 0, expiresAt: null, failures: 0, state: 'ready', lease: null,
    slots: { heap: -1, delay: null, expiry: null, order: 0, charge: 0 },
  };
}

const slot = (m: Message) => (m.slots as Slots).heap;
const order = (a: Message, b: Message) => b.priority - a.priority || a.seq - b.seq;

describe('ready messages', () => {
  it('come out by priority then seq, in order or not, with removals', () => {
    fc.assert(fc.property(
      fc.array(fc.oneof(
        // Mostly rising seqs, as publishes; sometimes an old one back.
        fc.record({ push: fc.integer({ min: 0, max: 3 }), old: fc.boolean() }),
        fc.record({ pop: fc.constant(true) }),
        fc.record({ remove: fc.nat() }),
      ), { maxLength: 300 }),
      (steps) => {
        const ready = new ReadyMessages();
        let model: Message[] = [];
        let seq = 1000;
        let old = 1000;
        for (const step of steps) {
          if ('push' in step) {
            const m = message(step.old ? --old : ++seq, step.push);
            ready.push(m);
            model.push(m);
          } else if ('pop' in step) {
            model.sort(order);
            const expected = model.shift();
            assert.equal(ready.peek(), expected);
            assert.equal(ready.pop(), expected);
            if (expected !== undefined) assert.equal(slot(expected), -1);
          } else if (model.length > 0) {
            const m = model[step.remove % model.length];
            assert.equal(ready.remove(m, slot(m)), true);
            assert.equal(slot(m), -1);
            assert.equal(ready.remove(m, slot(m)), false);
            model = model.filter((other) => other !== m);
          }
          // A listing's view, left in place: the first of each priority in order.
          const priority = seq % 4;
          const expected = model.filter((m) => m.priority === priority).sort(order);
          assert.deepEqual(ready.first(priority, 5), expected.slice(0, 5));
          assert.deepEqual(ready.first(priority, Infinity), expected);
        }
        model.sort(order);
        for (const expected of model) assert.equal(ready.pop(), expected);
        assert.equal(ready.pop(), undefined);
      },
    ), { numRuns: 300 });
  });

  it('takes 5,000 in-order messages out from the front without a heap', () => {
    const ready = new ReadyMessages();
    const all = Array.from({ length: 5000 }, (_, i) => message(i + 1, 0));
    for (const m of all) ready.push(m);
    // In a run: slots name positions, not heap indexes.
    assert.ok(all.every((m) => slot(m) <= -2));
    ready.remove(all[2500], slot(all[2500]));
    for (const m of all) if (m !== all[2500]) assert.equal(ready.pop(), m);
    assert.equal(ready.pop(), undefined);
  });
});
