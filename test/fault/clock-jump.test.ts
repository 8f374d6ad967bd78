// The wall clock jumps under a running broker (NTP step, VM resume): the
// broker reads a manual clock that the test moves by an hour while real
// timers run. Forward: what fell due is delivered at once, even to a
// consumer already waiting; expired leases count an attempt; TTL moves
// messages to the dead-letter queue. Backward: nothing fires early,
// receipts and deduplication keep working. Nothing is lost either way,
// also across a restart.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import { ManualClock, openBroker, tempDir, text } from '../helpers.js';

const HOUR = 60 * 60 * 1000;

let dir: ReturnType<typeof tempDir>;
let clock: ManualClock;
let broker: Broker;

beforeEach(async () => {
  dir = tempDir('usher-clock-');
  clock = new ManualClock(Date.now());
  broker = await openBroker(dir.path, { clock: clock.read });
  await broker.createQueue('q', {
    deadLetter: 'q.dlq',
    maxAttempts: 5,
    backoff: { initialMs: 0, jitter: 0 },
  });
});

afterEach(async () => {
  await broker.close();
  dir.remove();
});

const idsOf = (messages: { id: string }[]) => messages.map((m) => m.id).sort();

function everything(): string[] {
  return [
    ...broker.peek('q', { limit: 1000, offset: 0 }),
    ...broker.peek('q.dlq', { limit: 1000, offset: 0 }),
  ].map((m) => m.id).sort();
}

describe('a wall clock jump', () => {
  it('forward: due delays reach a waiting consumer at once', async () => {
    await broker.publish('q', [{ id: 'later', body: text('x'), delayMs: 50 * 60 * 1000 }]);
    const waiting = broker.receive('q', { max: 10, waitMs: 6000 });
    // Let the broker arm its timer for 50 minutes of real time.
    await new Promise((resolve) => setTimeout(resolve, 100));

    const jumpedAt = Date.now();
    clock.advance(HOUR);
    const delivered = await waiting;
    assert.deepEqual(idsOf(delivered), ['later']);
    // The watch compares the clocks once a second.
    assert.ok(Date.now() - jumpedAt < 4000, `arrived ${Date.now() - jumpedAt} ms after the jump`);
  });

  it('forward: leases end with an attempt counted, TTL dead-letters, nothing lost', async () => {
    await broker.publish('q', [
      { id: 'leased', body: text('a') },
      { id: 'short-lived', body: text('b'), ttlMs: 10 * 60 * 1000 },
      { id: 'plain', body: text('c') },
    ]);
    const [leased] = await broker.receive('q', { max: 1, waitMs: 0, visibilityTimeoutMs: 30_000 });
    assert.equal(leased.id, 'leased');

    clock.advance(HOUR);
    broker.runDue();
    assert.deepEqual(idsOf(broker.peek('q.dlq', { limit: 10, offset: 0 })), ['short-lived']);
    await assert.rejects(broker.ack('q', [leased.receipt]).then((results) => {
      if (!results[0]) throw new Error('lease gone');
    }), /lease gone/);
    const again = await broker.receive('q', { max: 10, waitMs: 0 });
    assert.deepEqual(idsOf(again), ['leased', 'plain']);
    assert.equal(again.find((m) => m.id === 'leased')?.attempt, 2);
    assert.deepEqual(everything(), ['leased', 'plain', 'short-lived']);
  });

  it('backward: nothing fires early, receipts and dedup still work', async () => {
    await broker.publish('q', [
      { id: 'soon', body: text('a'), delayMs: 5000 },
      { id: 'now', body: text('b') },
      { id: 'ttl', body: text('c'), ttlMs: 60_000 },
    ]);
    const [leased] = await broker.receive('q', { max: 1, waitMs: 0, visibilityTimeoutMs: 30_000 });

    clock.advance(-HOUR);
    // Long enough for the watch to notice and the broker to re-run timers.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    broker.runDue();
    const ready = await broker.receive('q', { max: 10, waitMs: 0 });
    assert.deepEqual(idsOf(ready), ['ttl'], 'the delay fired early or the TTL struck');
    assert.deepEqual(await broker.ack('q', [leased.receipt, ready[0].receipt]), [true, true]);
    const [repeat] = await broker.publish('q', [{ id: 'now', body: text('b') }]);
    assert.equal(repeat.duplicate, true, 'an id from "the future" is still remembered');

    // Time catches up: the delay fires at its original moment.
    clock.advance(HOUR + 5000);
    broker.runDue();
    const caughtUp = await broker.receive('q', { max: 10, waitMs: 0 });
    assert.deepEqual(idsOf(caughtUp), ['soon']);
    assert.deepEqual(everything(), ['soon']);
  });

  it('across a restart, a backward jump keeps delays at their logged time', async () => {
    await broker.publish('q', [{ id: 'delayed', body: text('a'), delayMs: 60_000 }]);
    await broker.close();
    clock.advance(-HOUR);
    broker = await openBroker(dir.path, { clock: clock.read });

    assert.deepEqual(await broker.receive('q', { max: 10, waitMs: 0 }), []);
    clock.advance(HOUR + 60_000);
    broker.runDue();
    assert.deepEqual(idsOf(await broker.receive('q', { max: 10, waitMs: 0 })), ['delayed']);
  });
});
