// A channel's unacked deliveries by tag (delivery-tags.ts) against a Map,
// the structure it stands in for, over random deliveries and settlements.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { DeliveryTags } from '../../src/amqp/delivery-tags.js';

/** How far behind the newest tag an earlier one is picked. */
const back = fc.nat(300);

type Step =
  | { kind: 'deliver'; skip: number }
  | { kind: 'ack'; pick: number }
  | { kind: 'ack-absent'; back: number }
  | { kind: 'unsettle'; back: number }
  | { kind: 'clear' };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('deliver' as const), skip: fc.nat(3) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('ack' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('ack-absent' as const), back }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unsettle' as const), back }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'clear' as const }) },
);

function agree(tags: DeliveryTags<string>, model: Map<number, string>, next: number): void {
  assert.equal(tags.size, model.size);
  const sorted = [...model.keys()].sort((a, b) => a - b);
  assert.deepEqual(tags.keys(), sorted);
  assert.deepEqual(tags.values(), sorted.map((tag) => model.get(tag)));
  for (let tag = Math.max(0, next - 400); tag <= next + 2; tag++) {
    assert.equal(tags.get(tag), model.get(tag), `tag ${tag}`);
    assert.equal(tags.has(tag), model.has(tag), `tag ${tag}`);
  }
}

describe('DeliveryTags', () => {
  it('answers as a Map would, whatever the order of acks', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 400 }), (steps) => {
        const tags = new DeliveryTags<string>();
        const model = new Map<number, string>();
        let next = 1;
        for (const s of steps) {
          if (s.kind === 'deliver') {
            next += s.skip;
            tags.set(next, `d${next}`);
            model.set(next, `d${next}`);
            next++;
          } else if (s.kind === 'ack') {
            const held = [...model.keys()];
            if (held.length === 0) continue;
            const tag = held[s.pick % held.length];
            assert.equal(tags.delete(tag), true);
            model.delete(tag);
          } else if (s.kind === 'ack-absent') {
            const tag = next - 1 - s.back;
            assert.equal(tags.delete(tag), model.delete(tag));
          } else if (s.kind === 'unsettle') {
            // A rolled-back transaction makes an earlier tag unacked again.
            const tag = next - 1 - s.back;
            if (tag < 1 || model.has(tag)) continue;
            tags.set(tag, `u${tag}`);
            model.set(tag, `u${tag}`);
          } else {
            tags.clear();
            model.clear();
          }
        }
        agree(tags, model, next);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps a delivery held while thousands pass, and the window in step', () => {
    const tags = new DeliveryTags<string>();
    tags.set(1, 'held');
    for (let tag = 2; tag < 20_000; tag++) {
      tags.set(tag, `d${tag}`);
      if (tag >= 500) assert.equal(tags.delete(tag - 498), true);
    }
    const model = new Map<number, string>([[1, 'held']]);
    for (let tag = 19_502; tag < 20_000; tag++) model.set(tag, `d${tag}`);
    agree(tags, model, 20_000);
    assert.equal(tags.get(1), 'held');
  });
});
