// Per-queue limits in the engine: maxLength and maxBytes with each overflow
// policy, reservations for publishes still being written, and what counts
// (waiting messages only). Pure, on a fixed clock.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { QueueEngine, type Outcome } from '../../src/engine/queue.js';
import { DEFAULT_SETTINGS, type Message, type QueueSettings } from '../../src/engine/types.js';

let nextSeq = 1;
const NOW = 1000;

function message(id: string, priority = 0, bytes = 1): Message {
  return {
    seq: nextSeq++,
    id,
    priority,
    group: null,
    headers: {},
    body: Buffer.alloc(bytes),
    publishedAt: NOW,
    availableAt: NOW,
    expiresAt: null,
    failures: 0,
    state: 'ready',
    lease: null,
  };
}

function engine(settings: Partial<QueueSettings>): QueueEngine {
  return new QueueEngine('q', { ...DEFAULT_SETTINGS, ...settings }, { random: () => 0 });
}

/** Admits and, when admitted, lands one message as the broker would. */
function publish(q: QueueEngine, m: Message): 'ok' | string {
  const [refusal] = q.admit([{ priority: m.priority, bytes: m.body.length }], true);
  if (refusal !== null) return refusal;
  q.settleReservation(1, m.body.length);
  q.enqueue(m, NOW);
  return 'ok';
}

const waitingIds = (q: QueueEngine) =>
  [...q.values()].filter((m) => m.state !== 'in-flight').map((m) => m.id);
const overflowed = (outcomes: Outcome[]) =>
  outcomes.filter((o) => o.kind === 'dead' && o.reason === 'overflow').map((o) => o.message.id);

describe('reject-publish', () => {
  it('refuses past maxLength and admits again once a message leaves', () => {
    const q = engine({ maxLength: 2 });
    assert.equal(publish(q, message('a')), 'ok');
    assert.equal(publish(q, message('b')), 'ok');
    assert.equal(publish(q, message('c')), 'max-length');
    assert.deepEqual(waitingIds(q), ['a', 'b']);
    assert.equal(q.totals.refused, 1);

    // In flight no longer counts (as in RabbitMQ): room for one more.
    q.receive(NOW, 1, 30_000);
    assert.equal(publish(q, message('d')), 'ok');
    assert.equal(publish(q, message('e')), 'max-length');
  });

  it('refuses past maxBytes, naming the limit', () => {
    const q = engine({ maxBytes: 10 });
    assert.equal(publish(q, message('a', 0, 6)), 'ok');
    assert.equal(publish(q, message('b', 0, 5)), 'max-bytes');
    assert.equal(publish(q, message('c', 0, 4)), 'ok');
  });

  it('counts room reserved for publishes still being written', () => {
    const q = engine({ maxLength: 2 });
    assert.deepEqual(q.admit([{ priority: 0, bytes: 1 }], true), [null]);
    assert.deepEqual(q.admit([{ priority: 0, bytes: 1 }], true), [null]);
    assert.deepEqual(q.admit([{ priority: 0, bytes: 1 }], true), ['max-length']);
    q.settleReservation(1, 1);
    assert.deepEqual(q.admit([{ priority: 0, bytes: 1 }], true), [null]);
  });

  it('refuses a whole batch that does not fit, changing nothing', () => {
    const q = engine({ maxLength: 3 });
    publish(q, message('a'));
    const batch = [{ priority: 0, bytes: 1 }, { priority: 0, bytes: 1 }, { priority: 0, bytes: 1 }];
    assert.deepEqual(q.admit(batch, true), ['max-length', 'max-length', 'max-length']);
    // Message by message, the first two fit.
    assert.deepEqual(q.admit(batch, false), [null, null, 'max-length']);
  });
});

describe('drop-oldest', () => {
  it('admits every newcomer and dead-letters the oldest waiting', () => {
    const q = engine({ maxLength: 2, overflow: 'drop-oldest' });
    for (const id of ['a', 'b', 'c', 'd']) assert.equal(publish(q, message(id)), 'ok');
    assert.deepEqual(waitingIds(q), ['c', 'd']);
    assert.deepEqual(overflowed(q.takeOutcomes()), ['a', 'b']);
    assert.equal(q.totals.overflowed, 2);
  });

  it('skips messages in flight, which do not count', () => {
    const q = engine({ maxLength: 1, overflow: 'drop-oldest' });
    publish(q, message('a'));
    q.receive(NOW, 1, 30_000);
    publish(q, message('b'));
    publish(q, message('c'));
    assert.deepEqual(overflowed(q.takeOutcomes()), ['b']);
    assert.deepEqual([...q.values()].map((m) => m.id), ['a', 'c']);
  });

  it('displaces a message moved back in as old as its first arrival', () => {
    const q = engine({ maxLength: 2, overflow: 'drop-oldest' });
    const a = message('a');
    publish(q, a);
    publish(q, message('b'));
    const [delivery] = q.receive(NOW, 1, 30_000);
    q.nack(delivery.receipt, NOW, { requeue: false });
    publish(q, message('c'));
    assert.deepEqual(overflowed(q.takeOutcomes()), []);

    // A redrive brings `a` back with its seq: the oldest, behind b and c in memory.
    q.enqueue({ ...a, failures: 0, state: 'ready', lease: null }, NOW);
    assert.deepEqual(overflowed(q.takeOutcomes()), ['a']);
    assert.deepEqual(q.list(0, 10).map((m) => m.id), ['b', 'c']);
  });

  it('displaces the oldest whatever its priority, and lists by priority', () => {
    const q = engine({ maxLength: 2, overflow: 'drop-oldest' });
    publish(q, message('low', 0));
    publish(q, message('high', 9));
    assert.deepEqual(q.list(0, 10).map((m) => m.id), ['high', 'low']);
    publish(q, message('next', 9));
    assert.deepEqual(overflowed(q.takeOutcomes()), ['low']);
  });

  it('trims by bytes until the queue fits', () => {
    const q = engine({ maxBytes: 10, overflow: 'drop-oldest' });
    publish(q, message('a', 0, 4));
    publish(q, message('b', 0, 4));
    publish(q, message('c', 0, 8));
    assert.deepEqual(overflowed(q.takeOutcomes()), ['a', 'b']);
    assert.deepEqual(waitingIds(q), ['c']);
  });
});

describe('reject-lowest-priority', () => {
  it('lets a higher newcomer displace the oldest of the lowest priority', () => {
    const q = engine({ maxLength: 3, overflow: 'reject-lowest-priority' });
    publish(q, message('low1', 1));
    publish(q, message('mid', 5));
    publish(q, message('low2', 1));
    assert.equal(publish(q, message('high', 9)), 'ok');
    assert.deepEqual(overflowed(q.takeOutcomes()), ['low1']);
    assert.deepEqual(waitingIds(q).sort(), ['high', 'low2', 'mid']);
  });

  it('refuses a newcomer of equal or lower priority than everything waiting', () => {
    const q = engine({ maxLength: 2, overflow: 'reject-lowest-priority' });
    publish(q, message('a', 5));
    publish(q, message('b', 5));
    assert.equal(publish(q, message('same', 5)), 'max-length');
    assert.equal(publish(q, message('lower', 2)), 'max-length');
    assert.deepEqual(q.takeOutcomes(), []);
  });

  it('displaces several small messages for one large one, or none at all', () => {
    const q = engine({ maxBytes: 10, overflow: 'reject-lowest-priority' });
    publish(q, message('a', 0, 3));
    publish(q, message('b', 0, 3));
    publish(q, message('c', 7, 3));
    // Needs 6 bytes freed: both priority-0 messages go.
    assert.equal(publish(q, message('big', 8, 7)), 'ok');
    assert.deepEqual(overflowed(q.takeOutcomes()), ['a', 'b']);
    // Would need 'c' (priority 7) and 'big' out: only lower priorities may
    // go, so it is refused and nothing moves.
    assert.equal(publish(q, message('huge', 7, 9)), 'max-bytes');
    assert.deepEqual(q.takeOutcomes(), []);
  });

  it('starts indexing when the policy is set on a queue that has messages', () => {
    const q = engine({});
    q.enqueue(message('old', 0), NOW);
    q.enqueue(message('older-high', 9), NOW);
    q.settings = { ...q.settings, maxLength: 2, overflow: 'reject-lowest-priority' };
    assert.equal(publish(q, message('new', 4)), 'ok');
    assert.deepEqual(overflowed(q.takeOutcomes()), ['old']);
  });

  it('never keeps more waiting than the limit and never displaces upward (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5 }),
        fc.array(fc.record({ priority: fc.integer({ min: 0, max: 9 }), take: fc.boolean() }), {
          maxLength: 40,
        }),
        (limit, steps) => {
          const q = engine({ maxLength: limit, overflow: 'reject-lowest-priority' });
          steps.forEach((step, i) => {
            const before = Math.min(...waitingIds(q).map((id) => q.get(seqOf(q, id))!.priority), 99);
            const result = publish(q, message(`m${i}`, step.priority));
            for (const o of q.takeOutcomes()) {
              assert.ok(o.message.priority < step.priority, 'displaced only lower priorities');
            }
            if (result !== 'ok') assert.ok(before >= step.priority || limit === 0);
            if (step.take) q.receive(NOW, 1, 30_000);
            assert.ok(waitingIds(q).length <= limit);
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});

function seqOf(q: QueueEngine, id: string): number {
  for (const m of q.values()) if (m.id === id) return m.seq;
  return -1;
}
