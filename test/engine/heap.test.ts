// The heap against a sorted array, with removals from the middle.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';

import { Heap } from '../../src/engine/heap.js';

interface Item {
  key: number;
  index: number;
}

it('pops in order and removes from anywhere, keeping positions true', () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(
        fc.record({ push: fc.integer({ min: 0, max: 50 }) }),
        fc.record({ pop: fc.constant(true) }),
        fc.record({ remove: fc.nat() }),
      ), { maxLength: 200 }),
      (ops) => {
        const heap = new Heap<Item>((a, b) => a.key < b.key, (item, index) => {
          item.index = index;
        });
        const model: Item[] = [];

        for (const op of ops) {
          if ('push' in op) {
            const item = { key: op.push, index: -1 };
            heap.push(item);
            model.push(item);
          } else if ('pop' in op) {
            const top = heap.pop();
            if (model.length === 0) {
              assert.equal(top, undefined);
              continue;
            }
            const least = Math.min(...model.map((m) => m.key));
            assert.equal(top?.key, least);
            model.splice(model.indexOf(top as Item), 1);
            assert.equal(top?.index, -1);
          } else if (model.length > 0) {
            const victim = model[op.remove % model.length];
            assert.equal(heap.remove(victim, victim.index), true);
            assert.equal(heap.remove(victim, victim.index), false);
            model.splice(model.indexOf(victim), 1);
          }
          assert.equal(heap.size, model.length);
        }
      },
    ),
  );
});
