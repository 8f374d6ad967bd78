// The broker with a cold backlog (issue #3): durable queues keep a small
// window of ready messages in memory (4 here) and read the rest back from
// the log. Everything a user sees must be as if all were in memory, before
// and after a restart.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { settledRecords } from '../../src/broker/durability.js';
import { MAX_RECORD_BYTES, encodeRecord } from '../../src/storage/codec.js';
import { brokerPerTest, text } from '../helpers.js';

const usher = brokerPerTest({ hotReadyLimit: 4, hotMemoryBytes: 0, segmentBytes: 8192 });

const bodies = (messages: { body: Buffer }[]) => messages.map((m) => m.body.toString());

/** Publishes `count` messages one at a time, priorities cycling 0, 3, 7. */
async function fill(queue: string, count: number, from = 0): Promise<string[]> {
  const published: Array<[string, number, number]> = [];
  for (let i = from; i < from + count; i++) {
    const priority = [0, 3, 7][i % 3];
    await usher.broker.publish(queue, [{ body: text(`m${i}`), priority, headers: { n: String(i) } }]);
    published.push([`m${i}`, priority, i]);
  }
  return published.sort((a, b) => b[1] - a[1] || a[2] - b[2]).map(([body]) => body);
}

/**
 * Moves the clock by `ms` and runs what is due, then once more a second
 * later: a cold head is first looked at one check period (1 s) after the
 * restart's first timer.
 */
async function advanceAndRun(ms: number): Promise<void> {
  usher.clock.advance(ms);
  usher.broker.runDue();
  usher.clock.advance(1_000);
  usher.broker.runDue();
}

/** Waits (up to 2 s) for `check`: moves are logged before they show. */
async function eventually(check: () => boolean): Promise<void> {
  for (let tries = 0; tries < 100 && !check(); tries++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(check(), 'in time');
}

async function drainAll(queue: string): Promise<string[]> {
  const seen: string[] = [];
  for (;;) {
    const batch = await usher.broker.receive(queue, { max: 7, waitMs: 0 });
    if (batch.length === 0) return seen;
    for (const message of batch) {
      if (message.headers.n === undefined) continue;
      assert.equal(message.headers.n, message.body.toString().slice(1));
    }
    seen.push(...bodies(batch));
    await usher.broker.ack(queue, batch.map((m) => m.receipt));
  }
}

describe('cold backlog in the broker', () => {
  it('delivers by priority then arrival, counts and lists cold messages', async () => {
    await usher.broker.createQueue('q', {});
    const expected = await fill('q', 40);

    const stats = usher.broker.getQueue('q').stats;
    assert.equal(stats.ready, 40);
    assert.equal(stats.total, 40);
    assert.equal(stats.bytes, expected.reduce((n, body) => n + body.length, 0));

    // Listed in the order they are delivered, hot and cold alike.
    const listed = usher.broker.peek('q', { offset: 2, limit: 5 });
    assert.deepEqual(bodies(listed), expected.slice(2, 7));
    assert.deepEqual(bodies(usher.broker.peek('q', { offset: 38, limit: 5 })), expected.slice(38));

    assert.deepEqual(await drainAll('q'), expected);
    assert.equal(usher.broker.getQueue('q').stats.total, 0);
  });

  it('comes back whole after a restart, retried and delayed ones included', async () => {
    const backoff = { initialMs: 1000, multiplier: 1, maxMs: 1000, jitter: 0 };
    await usher.broker.createQueue('q', { backoff });
    const expected = await fill('q', 30);
    const [first] = await usher.broker.receive('q', { max: 1, waitMs: 0 });
    await usher.broker.nack('q', first.receipt, { requeue: true, delayMs: 0, reason: 'busy' });
    await usher.broker.publish('q', [{ body: text('later'), delayMs: 60_000 }]);

    await usher.reopen();
    assert.equal(usher.broker.getQueue('q').stats.total, 31);
    assert.equal(usher.broker.getQueue('q').stats.delayed, 1);
    const again = await usher.broker.receive('q', { max: 1, waitMs: 0 });
    assert.equal(again[0].body.toString(), first.body.toString());
    assert.equal(again[0].attempt, 2);
    assert.equal(again[0].headers['x-usher-last-error'], 'busy');
    await usher.broker.ack('q', [again[0].receipt]);

    assert.deepEqual(await drainAll('q'), expected.slice(1));
    usher.clock.advance(61_000);
    usher.broker.runDue();
    assert.deepEqual(bodies(await usher.broker.receive('q', { max: 5, waitMs: 0 })), ['later']);
  });

  // A cold message's TTL was only looked at when a receive read it back:
  // after a restart (everything cold) a TTL-and-dead-letter retry queue
  // with no consumer never expired anything (breaker session).
  it('expires cold messages nobody reads, after a restart too, head first', async () => {
    await usher.broker.createQueue('wait', { messageTtlMs: 2_000, deadLetter: 'work' });
    await fill('wait', 30);
    await usher.reopen();
    assert.equal(usher.broker.getQueue('wait').stats.total, 30);

    await advanceAndRun(2_001);
    await eventually(() => usher.broker.getQueue('work').stats.total === 30);
    assert.equal(usher.broker.getQueue('wait').stats.total, 0);
    assert.equal(usher.broker.getQueue('wait').stats.expired, 30);
  });

  it('expires cold messages of their own TTL once they are the head', async () => {
    await usher.broker.createQueue('own', {});
    for (let i = 0; i < 20; i++) {
      await usher.broker.publish('own', [{ body: text(`short ${i}`), ttlMs: 500 }]);
    }
    await usher.broker.publish('own', [{ body: text('long'), ttlMs: 60_000 }]);
    await usher.reopen();

    await advanceAndRun(501);
    await eventually(() => usher.broker.getQueue('own').stats.total === 1);
    assert.equal(usher.broker.getQueue('own').stats.expired, 20);
  });

  it('purges and deletes cold messages for good', async () => {
    await usher.broker.createQueue('a', {});
    await usher.broker.createQueue('b', {});
    await fill('a', 20);
    await fill('b', 20);
    assert.deepEqual(await usher.broker.purgeQueue('a'), { purged: 20 });
    await usher.broker.deleteQueue('b');
    await usher.reopen();
    assert.equal(usher.broker.getQueue('a').stats.total, 0);
    assert.equal(usher.broker.hasQueue('b'), false);
    assert.deepEqual(await drainAll('a'), []);
  });

  it('dead-letters the oldest cold messages past maxLength with their bodies', async () => {
    await usher.broker.createQueue('q', { maxLength: 5, overflow: 'drop-oldest', deadLetter: 'q.dlq' });
    for (let i = 0; i < 12; i++) await usher.broker.publish('q', [{ body: text(`m${i}`) }]);
    assert.equal(usher.broker.getQueue('q').stats.total, 5);
    assert.deepEqual(await drainAll('q.dlq'), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6']);
    await usher.reopen();
    assert.deepEqual(await drainAll('q'), ['m7', 'm8', 'm9', 'm10', 'm11']);
  });

  it('lets compaction copy cold messages forward and reads them from the copies', async () => {
    await usher.broker.createQueue('kept', {});
    await usher.broker.createQueue('churn', {});
    const expected = await fill('kept', 12);
    // Enough churn to fill several segments and make compaction copy the
    // kept messages out of the oldest ones.
    for (let round = 0; round < 60; round++) {
      const batch = Array.from({ length: 5 }, () => ({ body: Buffer.alloc(200, 1) }));
      await usher.broker.publish('churn', batch);
      await drainAll('churn');
    }
    assert.ok(usher.broker.health().store.compactedMessages >= 12, 'nothing was compacted');
    assert.ok(usher.broker.health().store.segments <= 6, `${usher.broker.health().store.segments} segments`);
    assert.deepEqual(bodies(usher.broker.peek('kept', { offset: 0, limit: 20 })).length, 12);

    await usher.reopen();
    assert.deepEqual(await drainAll('kept'), expected);
  });
});

describe('settled records of a long backlog', () => {
  it('are cut so that no record passes the size limit', () => {
    const seqs = Array.from({ length: 150_000 }, (_, i) => i + 1);
    const records = settledRecords(seqs);
    assert.equal(records.length, 3);
    for (const record of records) {
      assert.equal(record.type, 'settled');
      assert.ok(encodeRecord(record).length < MAX_RECORD_BYTES / 100);
    }
    const joined = records.flatMap((record) => (record.type === 'settled' ? record.seqs : []));
    assert.deepEqual(joined, seqs);
    assert.deepEqual(settledRecords([]), []);
  });
});
