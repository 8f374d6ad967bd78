// The broker keeps more than new publishes cold (issue #3): messages moved
// in by dead-lettering, FIFO groups and delayed messages stay on disk past
// the window (4 here) as rows of scheduling fields, and come back whole,
// headers included, at run time and after a restart.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import type { QueueEngine } from '../../src/engine/queue.js';
import { ManualClock, openBroker, tempDir, text } from '../helpers.js';

let dir: ReturnType<typeof tempDir>;
let clock: ManualClock;
let broker: Broker;

const options = () => ({ clock: clock.read, random: () => 0, hotReadyLimit: 4 });

beforeEach(async () => {
  dir = tempDir();
  clock = new ManualClock();
  broker = await openBroker(dir.path, options());
});

afterEach(async () => {
  await broker.close();
  dir.remove();
});

async function reopen(): Promise<void> {
  await broker.close();
  broker = await openBroker(dir.path, options());
}

/** Messages of `queue` kept on disk only; the engine is private to the broker. */
function coldCount(queue: string): number {
  const engines = (broker as unknown as { engines: Map<string, QueueEngine> }).engines;
  return (engines.get(queue) as QueueEngine).coldCount;
}

async function drain(queue: string): Promise<{ body: string; headers: Record<string, string>;
  group: string | null; attempt: number }[]> {
  const seen = [];
  for (;;) {
    const batch = await broker.receive(queue, { max: 7, waitMs: 0 });
    if (batch.length === 0) return seen;
    for (const m of batch) {
      seen.push({ body: m.body.toString(), headers: m.headers, group: m.group, attempt: m.attempt });
    }
    await broker.ack(queue, batch.map((m) => m.receipt));
  }
}

describe('cold dead-letter, FIFO and delayed messages in the broker', () => {
  it('keeps a dead-letter queue filled by nacks cold and reads it back as it is', async () => {
    await broker.createQueue('dlq', {});
    await broker.createQueue('q', { deadLetter: 'dlq', maxAttempts: 1 });
    for (let i = 0; i < 20; i++) await broker.publish('q', [{ body: text(`d${i}`) }]);
    const received = await broker.receive('q', { max: 20, waitMs: 0 });
    for (const m of received) {
      await broker.nack('q', m.receipt, { requeue: true, reason: `bad ${m.body.toString()}` });
    }
    assert.equal(broker.getQueue('dlq').stats.ready, 20);
    assert.equal(coldCount('dlq'), 16, 'all but the window are cold');

    const check = (messages: Awaited<ReturnType<typeof drain>>) => {
      assert.deepEqual(messages.map((m) => m.body), received.map((m) => m.body.toString()));
      for (const m of messages) {
        assert.equal(m.headers['x-usher-death-reason'], 'max-attempts');
        assert.equal(m.headers['x-usher-last-error'], `bad ${m.body}`);
      }
    };
    await reopen();
    assert.equal(coldCount('dlq'), 20, 'replayed straight to the cold backlog');
    check(await drain('dlq'));
  });

  it('keeps FIFO groups cold, in order, across a restart', async () => {
    await broker.createQueue('f', { fifo: true });
    for (let i = 0; i < 24; i++) {
      await broker.publish('f', [{ body: text(`f${i}`), group: `g${i % 3}` }]);
    }
    assert.equal(coldCount('f'), 20);
    const [first] = await broker.receive('f', { max: 1, waitMs: 0 });
    await broker.nack('f', first.receipt, { requeue: true, delayMs: 0 });

    await reopen();
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
    await broker.createQueue('d', {});
    for (let i = 0; i < 12; i++) {
      await broker.publish('d', [{ body: text(`late${i}`), delayMs: 60_000 + (11 - i) * 1000 }]);
    }
    assert.equal(broker.getQueue('d').stats.delayed, 12);
    assert.equal(coldCount('d'), 8);
    assert.deepEqual(await drain('d'), []);

    await reopen();
    assert.equal(broker.getQueue('d').stats.delayed, 12);
    clock.advance(66_500);
    broker.runDue();
    assert.equal(broker.getQueue('d').stats.ready, 7);
    assert.deepEqual((await drain('d')).map((m) => m.body),
      ['late5', 'late6', 'late7', 'late8', 'late9', 'late10', 'late11']);
    clock.advance(10_000);
    broker.runDue();
    assert.equal((await drain('d')).length, 5);
  });
});
