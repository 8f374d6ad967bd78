// The oldest waiting message in memory (oldest-in-memory.ts) against a
// scan, as the engine uses it: messages come into the Map in any seq
// order (new publishes rising, moves and pages behind them), are
// delivered, come back and leave. The heap of those behind stays within
// twice the messages in memory, plus its slack, however long it runs.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { OldestInMemory } from '../../src/engine/oldest-in-memory.js';
import type { Message } from '../../src/engine/types.js';

function message(seq: number): Message {
  return {
    seq, id: `m${seq}`, priority: 0, group: null, headers: {}, body: Buffer.alloc(0),
    publishedAt: 0, availableAt: 0, expiresAt: null, failures: 0, state: 'ready', lease: null,
  };
}

/** The lowest waiting seq by a full scan. */
function scanned(messages: Map<number, Message>): number | undefined {
  let lowest: number | undefined;
  for (const m of messages.values()) {
    if (m.state !== 'in-flight' && (lowest === undefined || m.seq < lowest)) lowest = m.seq;
  }
  return lowest;
}

type Op = { add: 'new' | 'old' } | { deliver: number } | { back: number } | { leave: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ add: fc.constantFrom('new' as const, 'old' as const) }), weight: 4 },
  { arbitrary: fc.record({ deliver: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ back: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ leave: fc.nat() }), weight: 3 },
);

describe('the oldest waiting message in memory', () => {
  it('is the lowest waiting seq, whatever order messages came in and left', () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 400 }), fc.boolean(), (ops, startFull) => {
      const messages = new Map<number, Message>();
      let newest = 10_000;
      let older = 10_000;
      const enter = (m: Message, index?: OldestInMemory) => {
        messages.set(m.seq, m);
        index?.waiting(m);
      };
      // Started on a queue that holds messages already, or on an empty one.
      if (startFull) for (const seq of [5, 3, 8, 1]) enter(message(seq));
      const index = new OldestInMemory(messages);

      for (const o of ops) {
        const all = [...messages.values()];
        const pick = (n: number, state: 'waiting' | 'in-flight') => {
          const some = all.filter((m) => (m.state === 'in-flight') === (state === 'in-flight'));
          return some[n % some.length];
        };
        if ('add' in o) {
          enter(message(o.add === 'new' ? ++newest : --older), index);
        } else if ('deliver' in o) {
          const m = pick(o.deliver, 'waiting');
          if (m !== undefined) m.state = 'in-flight';
        } else if ('back' in o) {
          const m = pick(o.back, 'in-flight');
          if (m !== undefined) {
            m.state = 'ready';
            index.waiting(m);
          }
        } else if (all.length > 0) {
          messages.delete(all[o.leave % all.length].seq);
        }
        assert.equal(index.oldest()?.seq, scanned(messages));
      }
    }), { numRuns: 300 });
  });

  it('keeps at most twice the messages in memory, plus its slack', () => {
    const messages = new Map<number, Message>();
    const index = new OldestInMemory(messages);
    let newest = 1_000_000;
    let older = 1_000_000;
    for (let i = 0; i < 20_000; i++) {
      // Ten messages in memory; each one that comes in behind is kept.
      if (messages.size === 10) messages.delete(messages.keys().next().value as number);
      const m = message(i % 2 === 0 ? ++newest : --older);
      messages.set(m.seq, m);
      index.waiting(m);
      assert.ok(index.kept <= 2 * messages.size + 1024, `kept ${index.kept} at ${i}`);
    }
    assert.equal(index.oldest()?.seq, scanned(messages));
  });
});
