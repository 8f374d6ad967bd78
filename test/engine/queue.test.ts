// The queue engine on a fake clock: ordering, leases, retries, dead-letter
// decisions, delays, TTL and deduplication, with no sleeping.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { QueueEngine, type Outcome } from '../../src/engine/queue.js';
import { backoffDelay } from '../../src/engine/backoff.js';
import {
  DEFAULT_SETTINGS,
  type Message,
  type QueueSettings,
} from '../../src/engine/types.js';

let nextSeq = 1;

function message(fields: Partial<Message> = {}): Message {
  const seq = fields.seq ?? nextSeq++;
  return {
    seq,
    id: `m${seq}`,
    priority: 0,
    group: null,
    headers: {},
    body: Buffer.from(`body ${seq}`),
    publishedAt: 0,
    availableAt: 0,
    expiresAt: null,
    failures: 0,
    state: 'ready',
    lease: null,
    ...fields,
  };
}

function engine(settings: Partial<QueueSettings> = {}): QueueEngine {
  return new QueueEngine('q', { ...DEFAULT_SETTINGS, ...settings }, { random: () => 0 });
}

const ids = (deliveries: { message: Message }[]) => deliveries.map((d) => d.message.id);

describe('best-effort ordering', () => {
  it('delivers higher priority first, then arrival order', () => {
    const q = engine();
    const now = 1000;
    q.enqueue(message({ id: 'a', priority: 0 }), now);
    q.enqueue(message({ id: 'b', priority: 5 }), now);
    q.enqueue(message({ id: 'c', priority: 0 }), now);
    q.enqueue(message({ id: 'd', priority: 9 }), now);
    q.enqueue(message({ id: 'e', priority: 5 }), now);

    assert.deepEqual(ids(q.receive(now, 10, 30_000)), ['d', 'b', 'e', 'a', 'c']);
  });

  it('keeps priority over a requeue (C7 in the engine)', () => {
    const q = engine({ backoff: { ...DEFAULT_SETTINGS.backoff, initialMs: 0 } });
    const now = 0;
    for (let i = 0; i < 5; i++) q.enqueue(message({ id: `low${i}`, priority: 0 }), now);
    q.enqueue(message({ id: 'high', priority: 9 }), now);

    const [first] = q.receive(now, 1, 30_000);
    assert.equal(first.message.id, 'high');
    assert.equal(q.nack(first.receipt, now, { requeue: true })?.kind, 'retry');
    q.enqueue(message({ id: 'mid', priority: 5 }), now);

    const order = ids(q.receive(now, 10, 30_000));
    assert.deepEqual(order, ['high', 'mid', 'low0', 'low1', 'low2', 'low3', 'low4']);
  });
});

describe('oldest ready age', () => {
  it('is the oldest ready message\'s, one that came back behind newer ones included', () => {
    const q = engine();
    q.enqueue(message({ seq: 20, publishedAt: 1500, priority: 5 }), 1500);
    // Redriven or moved in: an older message enters memory after a newer one.
    q.enqueue(message({ seq: 10, publishedAt: 1000 }), 1600);
    assert.equal(q.oldestReadyAgeMs(2000), 1000);
  });

  it('sees ready messages behind more than 10,000 in flight', () => {
    const q = engine();
    for (let i = 0; i < 10_002; i++) q.enqueue(message({ publishedAt: 100 }), 100);
    q.receive(100, 10_001, 30_000);
    assert.equal(q.oldestReadyAgeMs(1100), 1000);
  });
});

describe('acks, nacks and leases', () => {
  it('ack settles a lease once; a second ack of the receipt finds nothing', () => {
    const q = engine();
    q.enqueue(message({ id: 'a' }), 0);
    const [delivery] = q.receive(0, 1, 1000);

    assert.equal(delivery.attempt, 1);
    assert.equal(q.ack(delivery.receipt)?.id, 'a');
    assert.equal(q.ack(delivery.receipt), undefined);
    assert.deepEqual(q.counts, { ready: 0, delayed: 0, inFlight: 0, bytes: 0 });
  });

  it('nack with requeue waits for the exponential backoff', () => {
    const q = engine({ backoff: { initialMs: 100, multiplier: 2, maxMs: 250, jitter: 0 } });
    q.enqueue(message({ id: 'a' }), 0);

    let [delivery] = q.receive(0, 1, 1000);
    q.nack(delivery.receipt, 0, { requeue: true });
    assert.equal(q.counts.delayed, 1);
    assert.deepEqual(q.receive(99, 1, 1000), []);
    [delivery] = q.receive(100, 1, 1000);
    assert.equal(delivery.attempt, 2);

    q.nack(delivery.receipt, 100, { requeue: true });
    assert.deepEqual(q.receive(299, 1, 1000), []);
    [delivery] = q.receive(300, 1, 1000);
    assert.equal(delivery.attempt, 3);

    q.nack(delivery.receipt, 300, { requeue: true });
    assert.deepEqual(q.receive(549, 1, 1000), [], 'capped at maxMs 250');
    assert.equal(q.receive(550, 1, 1000)[0].attempt, 4);

    const retries = q.takeOutcomes().filter((o) => o.kind === 'retry');
    assert.equal(retries.length, 3);
  });

  it('nack with a named delay overrides the backoff', () => {
    const q = engine();
    q.enqueue(message({ id: 'a' }), 0);
    const [delivery] = q.receive(0, 1, 1000);

    q.nack(delivery.receipt, 0, { requeue: true, delayMs: 5 });
    assert.deepEqual(q.receive(4, 1, 1000), []);
    assert.equal(q.receive(5, 1, 1000)[0].message.id, 'a');
  });

  it('nack without requeue dead-letters at once with reason rejected', () => {
    const q = engine();
    q.enqueue(message({ id: 'a' }), 0);
    const [delivery] = q.receive(0, 1, 1000);

    q.nack(delivery.receipt, 0, { requeue: false });
    const outcomes = q.takeOutcomes();
    assert.equal(outcomes.length, 1);
    assert.equal(outcomes[0].kind, 'dead');
    assert.equal((outcomes[0] as Extract<Outcome, { kind: 'dead' }>).reason, 'rejected');
    assert.equal(outcomes[0].message.failures, 1);
    assert.equal(q.size, 0);
  });

  it('an expired lease redelivers with the attempt raised', () => {
    const q = engine();
    q.enqueue(message({ id: 'a' }), 0);
    const [first] = q.receive(0, 1, 1000);

    q.tick(999);
    assert.equal(q.counts.inFlight, 1);
    q.tick(1000);
    assert.equal(q.counts.inFlight, 0);
    assert.equal(q.totals.leaseExpired, 1);

    const [second] = q.receive(1000, 1, 1000);
    assert.equal(second.attempt, 2);
    assert.notEqual(second.receipt, first.receipt);
    assert.equal(q.ack(first.receipt), undefined, 'the old receipt is stale');
  });

  it('release hands a lease back without counting an attempt', () => {
    const q = engine({ fifo: true });
    q.enqueue(message({ id: 'g1', group: 'G' }), 0);
    q.enqueue(message({ id: 'g2', group: 'G' }), 0);
    const leased = q.receive(0, 2, 1000);

    assert.equal(q.release(leased[1].receipt, 10), true);
    assert.equal(q.release(leased[0].receipt, 10), true);
    assert.equal(q.release(leased[0].receipt, 10), false);
    const again = q.receive(10, 2, 1000);
    assert.deepEqual(ids(again), ['g1', 'g2']);
    assert.deepEqual(again.map((d) => d.attempt), [1, 1]);
    assert.deepEqual(q.takeOutcomes(), []);
  });

  it('extending a lease postpones its expiry', () => {
    const q = engine();
    q.enqueue(message({ id: 'a' }), 0);
    const [delivery] = q.receive(0, 1, 1000);
    assert.equal(delivery.leaseDeadline, 1000);

    assert.equal(q.extend(delivery.receipt, 900, 5000), 5900);
    assert.equal(delivery.leaseDeadline, 5900, 'a delivery tells its lease as it is now');
    q.tick(1000);
    assert.equal(q.counts.inFlight, 1);
    q.tick(5900);
    assert.equal(q.counts.inFlight, 0);
  });

  it('a lease extended to an earlier deadline expires then, once', () => {
    const q = engine();
    q.enqueue(message({ id: 'a' }), 0);
    q.enqueue(message({ id: 'b' }), 0);
    const [a, b] = q.receive(0, 2, 1000);

    assert.equal(q.extend(a.receipt, 100, 400), 500);
    assert.equal(q.nextWakeAt(), 500);
    q.tick(500);
    assert.equal(q.totals.leaseExpired, 1);
    assert.equal(q.ack(a.receipt), undefined);
    assert.equal(q.ack(b.receipt)?.id, 'b');
  });

  it('only a current receipt settles: forged, malformed and stale ones find nothing', () => {
    const q = engine();
    q.enqueue(message({ id: 'leased' }), 0);
    q.enqueue(message({ id: 'waiting' }), 0);
    const [delivery] = q.receive(0, 1, 1000);
    const [seq, number] = delivery.receipt.split('.');
    const waitingSeq = (Number.parseInt(seq, 36) + 1).toString(36);

    // Each names the leased message's seq, or the waiting one's, or none.
    const wrong = [
      `${seq}.${(Number.parseInt(number, 36) + 1).toString(36)}`,
      `${seq}.`,
      `0${delivery.receipt}`,
      `${delivery.receipt}0`,
      `${waitingSeq}.${number}`,
      seq,
      `.${number}`,
      '',
      delivery.receipt.toUpperCase(),
    ];
    for (const receipt of wrong) {
      assert.equal(q.ack(receipt), undefined, receipt);
      assert.equal(q.nack(receipt, 0, { requeue: true }), undefined, receipt);
      assert.equal(q.extend(receipt, 0, 5000), undefined, receipt);
      assert.equal(q.release(receipt, 0), false, receipt);
    }
    assert.deepEqual(q.counts, { ready: 1, delayed: 0, inFlight: 1, bytes: q.counts.bytes });

    // A receipt built anew, not the same string, still settles.
    assert.equal(q.ack([seq, number].join('.'))?.id, 'leased');
  });

  it('dead-letters after the retry limit with reason max-attempts', () => {
    const q = engine({ maxAttempts: 3, backoff: { ...DEFAULT_SETTINGS.backoff, initialMs: 0 } });
    q.enqueue(message({ id: 'a' }), 0);

    for (let attempt = 1; attempt <= 3; attempt++) {
      const [delivery] = q.receive(0, 1, 1000);
      assert.equal(delivery.attempt, attempt);
      q.nack(delivery.receipt, 0, { requeue: true });
    }
    const dead = q.takeOutcomes().filter((o) => o.kind === 'dead');
    assert.equal(dead.length, 1);
    assert.equal((dead[0] as Extract<Outcome, { kind: 'dead' }>).reason, 'max-attempts');
    assert.equal(dead[0].message.failures, 3);
    assert.equal(q.size, 0);
  });

  it('keeps a correct attempt count over 20 nacks in a row (C4)', () => {
    const q = engine({ maxAttempts: 100, backoff: { ...DEFAULT_SETTINGS.backoff, initialMs: 0 } });
    q.enqueue(message({ id: 'a' }), 0);

    for (let attempt = 1; attempt <= 20; attempt++) {
      const [delivery] = q.receive(0, 1, 1000);
      assert.equal(delivery.attempt, attempt);
      q.nack(delivery.receipt, 0, { requeue: true });
    }
    assert.equal(q.receive(0, 1, 1000)[0].attempt, 21);
    assert.deepEqual({ ...q.counts, bytes: 0 }, { ready: 0, delayed: 0, inFlight: 1, bytes: 0 });
  });
});

describe('FIFO groups', () => {
  function fifo() {
    return engine({ fifo: true, backoff: { ...DEFAULT_SETTINGS.backoff, initialMs: 0 } });
  }

  it('keeps order within a group and serves groups in turn', () => {
    const q = fifo();
    for (const [id, group] of [['a1', 'A'], ['a2', 'A'], ['b1', 'B'], ['a3', 'A'], ['b2', 'B']]) {
      q.enqueue(message({ id, group }), 0);
    }

    const first = q.receive(0, 1, 1000);
    const second = q.receive(0, 1, 1000);
    assert.deepEqual(ids(first), ['a1']);
    assert.deepEqual(ids(second), ['b1']);
    assert.deepEqual(q.receive(0, 1, 1000), [], 'both groups blocked while in flight');

    q.ack(first[0].receipt);
    assert.deepEqual(ids(q.receive(0, 10, 1000)), ['a2', 'a3']);
  });

  it('blocks a group behind a retry and resumes in order', () => {
    const q = fifo();
    q.enqueue(message({ id: 'g1', group: 'G' }), 0);
    q.enqueue(message({ id: 'g2', group: 'G' }), 0);

    const [g1] = q.receive(0, 1, 1000);
    q.nack(g1.receipt, 0, { requeue: true, delayMs: 50 });
    assert.deepEqual(q.receive(10, 10, 1000), [], 'g2 waits behind the retrying g1');

    const again = q.receive(50, 10, 1000);
    assert.deepEqual(ids(again), ['g1', 'g2']);
    assert.equal(again[0].attempt, 2);
  });

  it('follows leases, not expiry of the others (C8)', () => {
    const q = fifo();
    for (const id of ['g1', 'g2', 'g3']) q.enqueue(message({ id, group: 'G' }), 0);
    q.enqueue(message({ id: 'h1', group: 'H' }), 0);

    const leased = q.receive(0, 3, 1000);
    assert.deepEqual(ids(leased), ['g1', 'g2', 'g3']);

    // (a) a newcomer to G is not delivered while G has messages in flight.
    q.enqueue(message({ id: 'g4', group: 'G' }), 0);
    // (c) other groups never wait.
    assert.deepEqual(ids(q.receive(0, 10, 10_000)), ['h1']);

    // (b) g1's lease outlives g2 and g3: they expire but stay blocked.
    q.extend(leased[0].receipt, 0, 10_000);
    q.tick(1000);
    assert.equal(q.counts.inFlight, 2, 'g1 and h1 still leased');
    assert.deepEqual(q.receive(1000, 10, 1000), []);

    q.ack(leased[0].receipt);
    assert.deepEqual(ids(q.receive(1000, 10, 1000)), ['g2', 'g3', 'g4']);
  });

  it('when g1 itself expires it comes back first', () => {
    const q = fifo();
    for (const id of ['g1', 'g2']) q.enqueue(message({ id, group: 'G' }), 0);

    q.receive(0, 2, 1000);
    q.tick(1000);
    const again = q.receive(1000, 10, 1000);
    assert.deepEqual(ids(again), ['g1', 'g2']);
    assert.deepEqual(again.map((d) => d.attempt), [2, 2]);
  });
});

describe('delays, TTL and deduplication', () => {
  it('releases delayed messages at their time, shortest delay first (C10)', () => {
    const q = engine();
    q.enqueue(message({ id: 'hour', availableAt: 3_600_000 }), 0);
    q.enqueue(message({ id: 'minute', availableAt: 60_000 }), 0);
    q.enqueue(message({ id: 'second', availableAt: 1000 }), 0);

    assert.equal(q.nextWakeAt(), 1000);
    assert.deepEqual(q.receive(999, 10, 1000), []);
    assert.deepEqual(ids(q.receive(1000, 10, 100_000)), ['second']);
    assert.deepEqual(ids(q.receive(60_000, 10, 100_000)), ['minute']);
    assert.deepEqual(ids(q.receive(3_600_000, 10, 1000)), ['hour']);
  });

  it('expires a waiting message at its TTL with reason expired', () => {
    const q = engine();
    q.enqueue(message({ id: 'a', expiresAt: 500 }), 0);
    q.enqueue(message({ id: 'b' }), 0);

    q.tick(500);
    const [outcome] = q.takeOutcomes();
    assert.equal(outcome.kind, 'dead');
    assert.equal((outcome as Extract<Outcome, { kind: 'dead' }>).reason, 'expired');
    assert.equal(outcome.message.id, 'a');
    assert.equal(q.totals.expired, 1);
    assert.deepEqual(ids(q.receive(500, 10, 1000)), ['b']);
  });

  it('does not expire a message mid-lease, but on its return', () => {
    const q = engine({ backoff: { ...DEFAULT_SETTINGS.backoff, initialMs: 0 } });
    q.enqueue(message({ id: 'a', expiresAt: 500 }), 0);
    const [delivery] = q.receive(0, 1, 10_000);

    q.tick(600);
    assert.equal(q.counts.inFlight, 1);
    q.nack(delivery.receipt, 700, { requeue: true });
    const [outcome] = q.takeOutcomes();
    assert.equal((outcome as Extract<Outcome, { kind: 'dead' }>).reason, 'expired');
  });

  it('remembers ids within the window only', () => {
    const q = engine({ dedupWindowMs: 1000 });
    q.rememberId('x', 0);

    assert.equal(q.isDuplicate('x', 999), true);
    assert.equal(q.isDuplicate('x', 1000), false);
    assert.equal(q.isDuplicate('y', 10), false);
  });
});

describe('settled messages leave every heap', () => {
  it('an ack leaves no lease or TTL entry behind to hold the body', () => {
    const q = engine();
    for (let i = 0; i < 100; i++) q.enqueue(message({ expiresAt: 1_000_000 }), 0);
    q.enqueue(message({ availableAt: 500 }), 0);
    q.enqueue(message({ availableAt: 500 }), 0);

    for (const delivery of q.receive(0, 100, 30_000)) q.ack(delivery.receipt);
    q.purge();
    assert.equal(q.size, 0);
    assert.equal(q.nextWakeAt(), null, 'no timer entry outlived its message');
  });
});

describe('purge and take', () => {
  it('purge removes waiting messages and leaves leases working', () => {
    const q = engine();
    for (let i = 0; i < 3; i++) q.enqueue(message(), 0);
    q.enqueue(message({ availableAt: 100 }), 0);
    const [delivery] = q.receive(0, 1, 1000);

    assert.equal(q.purge().seqs.length, 3);
    assert.deepEqual({ ...q.counts, bytes: 0 }, { ready: 0, delayed: 0, inFlight: 1, bytes: 0 });
    assert.ok(q.ack(delivery.receipt));
    q.tick(1000);
    assert.equal(q.size, 0);
  });
});

describe('backoff', () => {
  it('grows, caps and jitters downwards', () => {
    const settings = { initialMs: 100, multiplier: 3, maxMs: 1000, jitter: 0.5 };
    assert.equal(backoffDelay(settings, 1, () => 0), 100);
    assert.equal(backoffDelay(settings, 2, () => 0), 300);
    assert.equal(backoffDelay(settings, 5, () => 0), 1000);
    assert.equal(backoffDelay(settings, 5, () => 0.999999), 500);
  });
});

describe('counters agree with a full scan (C20 in the engine)', () => {
  it('holds for random operations', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('publish' as const), priority: fc.integer({ min: 0, max: 9 }),
        delay: fc.integer({ min: 0, max: 50 }), ttl: fc.option(fc.integer({ min: 1, max: 80 })),
        group: fc.constantFrom('a', 'b', null) }),
      fc.record({ kind: fc.constant('receive' as const), max: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ kind: fc.constantFrom('ack' as const, 'nack' as const, 'reject' as const),
        pick: fc.nat() }),
      fc.record({ kind: fc.constant('tick' as const), advance: fc.integer({ min: 0, max: 40 }) }),
      // A purge whose `settled` records fail is put back (restorePurged).
      fc.record({ kind: fc.constant('purge' as const), fails: fc.boolean() }),
    );

    fc.assert(
      fc.property(fc.boolean(), fc.array(op, { maxLength: 80 }), (isFifo, ops) => {
        const q = engine({ fifo: isFifo, maxAttempts: 3,
          backoff: { initialMs: 10, multiplier: 2, maxMs: 40, jitter: 0 } });
        let now = 0;
        const receipts: string[] = [];

        for (const step of ops) {
          if (step.kind === 'publish') {
            q.enqueue(message({ priority: step.priority, group: step.group,
              availableAt: now + step.delay,
              expiresAt: step.ttl === null ? null : now + step.ttl }), now);
          } else if (step.kind === 'receive') {
            receipts.push(...q.receive(now, step.max, 30).map((d) => d.receipt));
          } else if (step.kind === 'tick') {
            now += step.advance;
            q.tick(now);
          } else if (step.kind === 'purge') {
            const purged = q.purge();
            if (step.fails) q.restorePurged(purged, now);
          } else if (receipts.length > 0) {
            const [receipt] = receipts.splice(step.pick % receipts.length, 1);
            if (step.kind === 'ack') q.ack(receipt);
            else q.nack(receipt, now, { requeue: step.kind === 'nack' });
          }
          q.takeOutcomes();

          const scan = { ready: 0, delayed: 0, inFlight: 0, bytes: 0 };
          for (const m of q.values()) {
            if (m.state === 'ready') scan.ready++;
            else if (m.state === 'delayed') scan.delayed++;
            else scan.inFlight++;
            scan.bytes += m.body.length;
          }
          assert.deepEqual(q.counts, scan);
          assert.equal(scan.ready + scan.delayed + scan.inFlight, q.size);
        }
      }),
      { numRuns: 300 },
    );
  });
});
