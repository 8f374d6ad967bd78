// The broker keeps more than new publishes cold (issue #3): messages moved
// in by dead-lettering, FIFO groups and delayed messages stay on disk past
// the window (4 here) as rows of scheduling fields, and come back whole,
// headers included, at run time and after a restart.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { QueueEngine } from '../../src/engine/queue.js';
import { brokerPerTest, text } from '../helpers.js';

const usher = brokerPerTest({ hotReadyLimit: 4, hotMemoryBytes: 0 });

/** Messages of `queue` kept on disk only; the engine is private to the broker. */
function coldCount(queue: string): number {
  const engines = (usher.broker as unknown as { engines: Map<string, QueueEngine> }).engines;
  return (engines.get(queue) as QueueEngine).coldCount;
}

async function drain(queue: string): Promise<{ body: string; headers: Record<string, string>;
  group: string | null; attempt: number }[]> {
  const seen = [];
  for (;;) {
    const batch = await usher.broker.receive(queue, { max: 7, waitMs: 0 });
    if (batch.length === 0) return seen;
    for (const m of batch) {
      seen.push({ body: m.body.toString(), headers: m.headers, group: m.group, attempt: m.attempt });
    }
    await usher.broker.ack(queue, batch.map((m) => m.receipt));
  }
}

describe('cold dead-letter, FIFO and delayed messages in the broker', () => {
  it('keeps a dead-letter queue filled by nacks cold and reads it back as it is', async () => {
    await usher.broker.createQueue('dlq', {});
    await usher.broker.createQueue('q', { deadLetter: 'dlq', maxAttempts: 1 });
    for (let i = 0; i < 20; i++) await usher.broker.publish('q', [{ body: text(`d${i}`) }]);
    const received = await usher.broker.receive('q', { max: 20, waitMs: 0 });
    for (const m of received) {
      await usher.broker.nack('q', m.receipt, { requeue: true, reason: `bad ${m.body.toString()}` });
    }
    assert.equal(usher.broker.getQueue('dlq').stats.ready, 20);
    assert.equal(coldCount('dlq'), 16, 'all but the window are cold');

    const check = (messages: Awaited<ReturnType<typeof drain>>) => {
      assert.deepEqual(messages.map((m) => m.body), received.map((m) => m.body.toString()));
      for (const m of messages) {
        assert.equal(m.headers['x-usher-death-reason'], 'max-attempts');
        assert.equal(m.headers['x-usher-last-error'], `bad ${m.body}`);
      }
    };
    await usher.reopen();
    assert.equal(coldCount('dlq'), 20, 'replayed straight to the cold backlog');
    check(await drain('dlq'));
  });

  it('looks at a cold head after a restart by a few messages, not a page read ahead', async () => {
    // Whole pages, and two more read ahead, for each queue took 250 MB for
    // 100 queues of 15 KB messages with no TTL (breaker session).
    await usher.broker.createQueue('plain', {});
    for (let i = 0; i < 100; i++) await usher.broker.publish('plain', [{ body: text(`p${i}`) }]);
    await usher.reopen();
    for (let i = 0; i < 3; i++) {
      usher.clock.advance(1_001);
      usher.broker.runDue();
    }
    assert.ok(coldCount('plain') >= 100 - 16, `${coldCount('plain')} still cold`);
  });

  it('expires many queues\' cold heads a share at a time, not all in one run', async () => {
    // 20 queues of 20,000 expiring at once held the event loop 2.7 s.
    for (let q = 0; q < 10; q++) {
      await usher.broker.createQueue(`ttl${q}`, { messageTtlMs: 1_000 });
      await usher.broker.publish(`ttl${q}`,
        Array.from({ length: 300 }, (_, i) => ({ body: text(`t${q}.${i}`) })));
    }
    await usher.reopen();
    usher.broker.runDue();
    usher.clock.advance(2_000);
    usher.broker.runDue();
    const expired = () => Array.from({ length: 10 },
      (_, q) => usher.broker.getQueue(`ttl${q}`).stats.expired).reduce((a, b) => a + b);
    const first = expired();
    assert.ok(first > 0 && first < 3_000, `${first} expired in the first run`);
    for (let run = 0; run < 50 && expired() < 3_000; run++) {
      usher.clock.advance(20);
      usher.broker.runDue();
    }
    assert.equal(expired(), 3_000);
  });

  it('keeps FIFO groups cold, in order, across a restart', async () => {
    await usher.broker.createQueue('f', { fifo: true });
    for (let i = 0; i < 24; i++) {
      await usher.broker.publish('f', [{ body: text(`f${i}`), group: `g${i % 3}` }]);
    }
    assert.equal(coldCount('f'), 20);
    const [first] = await usher.broker.receive('f', { max: 1, waitMs: 0 });
    await usher.broker.nack('f', first.receipt, { requeue: true, delayMs: 0 });

    await usher.reopen();
    assert.ok(coldCount('f') >= 20);
    const drained = await drain('f');
    assert.equal(drained.length, 24);
    for (const group of ['g0', 'g1', 'g2']) {
      const bodies = drained.filter((m) => m.group === group).map((m) => m.body);
      const expected = Array.from({ length: 8 }, (_, k) => `f${3 * k + Number(group[1])}`);
      assert.deepEqual(bodies, expected, group);
    }
    assert.equal(drained.find((m) => m.body === 'f0')?.attempt, 2);
  });

  it('keeps delayed messages cold and releases them on time, before and after a restart', async () => {
    await usher.broker.createQueue('d', {});
    for (let i = 0; i < 12; i++) {
      await usher.broker.publish('d', [{ body: text(`late${i}`), delayMs: 60_000 + (11 - i) * 1000 }]);
    }
    assert.equal(usher.broker.getQueue('d').stats.delayed, 12);
    assert.equal(coldCount('d'), 8);
    assert.deepEqual(await drain('d'), []);

    await usher.reopen();
    assert.equal(usher.broker.getQueue('d').stats.delayed, 12);
    usher.clock.advance(66_500);
    usher.broker.runDue();
    assert.equal(usher.broker.getQueue('d').stats.ready, 7);
    assert.deepEqual((await drain('d')).map((m) => m.body),
      ['late5', 'late6', 'late7', 'late8', 'late9', 'late10', 'late11']);
    usher.clock.advance(10_000);
    usher.broker.runDue();
    assert.equal((await drain('d')).length, 5);
  });
});
