// The on-sale demo's worker pool (src/demo/ticketing/onsale-workers.ts)
// takes one message at a time in the order of its queues: a payment that
// lands while a worker is busy with a notification is the next message
// taken, not one after the rest of the notifications it holds. The work
// hook publishes the payment during the first notification's work and
// waits until the pool holds it, so the test does not depend on timing.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { connect } from '../../src/client/index.js';
import { startEmbeddedBroker } from '../../src/demo/embedded.js';
import { WorkerPool } from '../../src/demo/ticketing/onsale-workers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs a one-worker pool of capacity 100 msg/s (10 ms a message) over five
 * messages; answers when each was taken and when its work was due.
 */
async function schedule(
  jitter: { workJitter: number; random?: () => number },
): Promise<{ takenAt: number[]; doneAt: number[] }> {
  const broker = await startEmbeddedBroker({ sync: false });
  const client = connect(broker.url, { retry: { retries: 0 } });
  try {
    await client.createQueue('jobs');
    await client.publishBatch('jobs', Array.from({ length: 5 }, (_, i) => ({ body: i })));

    const takenAt: number[] = [];
    const doneAt: number[] = [];
    let allDone: () => void = () => {};
    const done = new Promise<void>((resolve) => (allDone = resolve));
    const pool = new WorkerPool(
      client,
      [{ name: 'jobs', onTaken: (_, times) => takenAt.push(times.takenAt) }],
      {
        workers: 1,
        capacityPerSecond: 100,
        ...jitter,
        work: async (_, due) => {
          doneAt.push(due);
          await sleep(Math.max(0, due - Date.now()));
          if (doneAt.length === 5) allDone();
        },
      },
    );
    pool.start();
    await done;
    await pool.stop();
    return { takenAt, doneAt };
  } finally {
    await broker.close();
  }
}

describe('on-sale worker pool', () => {
  it('takes a payment that lands mid-work before the notifications already waiting', async () => {
    const broker = await startEmbeddedBroker({ sync: false });
    const client = connect(broker.url, { retry: { retries: 0 } });
    try {
      await client.createQueue('payments');
      await client.createQueue('notifications');
      await client.publishBatch(
        'notifications',
        Array.from({ length: 8 }, (_, i) => ({ body: `notification ${i}` })),
      );

      const taken: string[] = [];
      let allTaken: () => void = () => {};
      const done = new Promise<void>((resolve) => (allTaken = resolve));
      const onTaken = (message: { body: unknown }) => {
        taken.push(String(message.body));
        if (taken.length === 9) allTaken();
      };
      const pool: WorkerPool = new WorkerPool(
        client,
        [
          { name: 'payments', onTaken },
          { name: 'notifications', onTaken },
        ],
        {
          workers: 1,
          capacityPerSecond: 1000,
          work: async () => {
            if (taken.length !== 1) return;
            await client.publish('payments', 'payment');
            while (pool.heldOf('payments') === 0) await sleep(5);
          },
        },
      );
      pool.start();
      await done;
      await pool.stop();

      assert.equal(taken[0], 'notification 0');
      assert.equal(taken[1], 'payment', taken.join(', '));
      assert.deepEqual(
        taken.slice(2),
        Array.from({ length: 7 }, (_, i) => `notification ${i + 1}`),
      );
      const left = await client.receive('notifications', { max: 10 });
      assert.equal(left.length, 0, 'every message acked');
    } finally {
      await broker.close();
    }
  });

  it('schedules each message a full work time after the last, from the start', async () => {
    // Made-up time is only for a worker kept busy; one that was idle owes
    // nothing (a bug once let every worker back from idle work 10 messages
    // for free, and the pool took the whole spike).
    const { takenAt, doneAt } = await schedule({ workJitter: 0 });

    assert.ok(doneAt[0] >= takenAt[0] + 10, `first due ${doneAt[0] - takenAt[0]} ms after taken`);
    for (let i = 1; i < 5; i++) {
      assert.ok(doneAt[i] >= doneAt[i - 1] + 10, `message ${i} due too soon`);
    }
  });

  it('varies each message\'s work time within its band, the mean unchanged', async () => {
    // Draws 0, 0.5 and 0.999 in turn: 5, 10 and 14.99 ms of work, so
    // workers that start together drift apart, at 10 ms on average.
    let draws = 0;
    const { takenAt, doneAt } = await schedule({
      workJitter: 0.5,
      random: () => [0, 0.5, 0.999][draws++ % 3],
    });

    const gaps = doneAt.slice(1).map((due, i) => due - doneAt[i]);
    // A gap is at least the work drawn; a late timer can only add to it.
    assert.ok(doneAt[0] >= takenAt[0] + 5, `first due ${doneAt[0] - takenAt[0]} ms after taken`);
    [10, 14.9, 5, 10].forEach((least, i) => assert.ok(gaps[i] >= least, `gap ${i}: ${gaps[i]} ms`));
  });
});
