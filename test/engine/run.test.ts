// A run (run.ts) holds the items in it, not every item that passed
// through: with one item staying at its front (a lease an AMQP consumer
// holds for its 30 minutes while the queue's other deliveries are acked,
// an expiry of a message that waits out its TTL), items leaving from the
// middle must not each leave a place behind. And whatever it does with
// those places, items come out in arrival order and leave by their slot.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { Run } from '../../src/engine/run.js';
import { TimedEntries } from '../../src/engine/timed-entries.js';
import type { Message, TimedEntry } from '../../src/engine/types.js';

interface Item {
  name: number;
  slot: number;
}

const newRun = () => new Run<Item>((item, slot) => {
  item.slot = slot;
});

/** The places a run keeps, read from its private array. */
const placesOf = (run: Run<Item>) => run.places;

describe('a run', () => {
  it('lets go of the places of items that left from the middle', () => {
    const run = newRun();
    const front: Item = { name: 0, slot: -1 };
    run.push(front);
    for (let name = 1; name <= 100_000; name++) {
      const item = { name, slot: -1 };
      run.push(item);
      assert.equal(run.remove(item, item.slot), true);
    }

    assert.equal(run.count, 1);
    assert.ok(placesOf(run) < 4096, `${placesOf(run)} places kept for one item`);
    assert.equal(run.shift(), front);
    assert.equal(run.count, 0);
  });

  it('keeps arrival order and finds items by slot, whatever leaves where', () => {
    fc.assert(fc.property(
      fc.array(fc.oneof(
        fc.record({ push: fc.integer({ min: 1, max: 3000 }) }),
        fc.record({ shift: fc.integer({ min: 1, max: 500 }) }),
        fc.record({ remove: fc.integer({ min: 1, max: 3000 }), from: fc.nat() }),
      ), { maxLength: 30 }),
      (steps) => {
        const run = newRun();
        const model: Item[] = [];
        let name = 0;
        for (const step of steps) {
          if ('push' in step) {
            for (let i = 0; i < step.push; i++) {
              const item = { name: name++, slot: -1 };
              run.push(item);
              model.push(item);
            }
          } else if ('shift' in step) {
            for (let i = 0; i < step.shift && model.length > 0; i++) {
              assert.equal(run.shift(), model.shift());
            }
          } else {
            // From the middle, mostly: the front stays where it is.
            for (let i = 0; i < step.remove && model.length > 1; i++) {
              const at: number = 1 + (step.from + i * 7919) % (model.length - 1);
              const item: Item = model.splice(at, 1)[0];
              assert.equal(run.remove(item, item.slot), true);
              assert.equal(item.slot, -1);
              assert.equal(run.remove(item, item.slot), false);
            }
          }
          assert.equal(run.count, model.length);
          assert.equal(run.peek(), model[0]);
          assert.ok(placesOf(run) <= 2 * model.length + 1024,
            `${placesOf(run)} places kept for ${model.length} items`);
        }
      },
    ), { numRuns: 200 });
  });
});

describe('leases held while others are acked', () => {
  it('keep a place for the held one only', () => {
    const leases = new TimedEntries();
    const message = (seq: number) => ({ seq }) as Message;
    const lease = (seq: number): TimedEntry =>
      ({ at: 1_800_000 + seq, message: message(seq), index: -1 });
    const held = lease(0);
    leases.push(held);
    for (let seq = 1; seq <= 100_000; seq++) {
      const acked = lease(seq);
      leases.push(acked);
      assert.equal(leases.remove(acked), true);
    }

    assert.equal(leases.size, 1);
    assert.ok(leases.runPlaces < 4096, `${leases.runPlaces} places kept for one lease`);
    assert.equal(leases.pop(), held);
  });
});
