// A redrive with `max` moves the messages the dead-letter queue would
// deliver first: ready ones by priority (highest first), then arrival
// (seq); then delayed ones by due time. The same whether the queue is all
// in memory or mostly cold (a hot window of 3 here), and after a restart.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import { ManualClock, openBroker, tempDir, text } from '../helpers.js';

const PRIORITIES = [1, 5, 1, 9, 5, 0, 9, 1, 3, 5];

/** Fills `dlq` by nacks in reverse order and direct delayed publishes. */
async function fill(broker: Broker): Promise<void> {
  await broker.createQueue('dlq', {});
  await broker.createQueue('q', { deadLetter: 'dlq' });
  await broker.createQueue('back', {});
  await broker.publish('q', PRIORITIES.map((priority, i) => ({
    id: `m${i}`, body: text(`m${i}`), priority,
  })));
  const received = await broker.receive('q', { max: PRIORITIES.length, waitMs: 0 });
  // The dead-letter queue gets them in the opposite of their publish order.
  for (const message of received.reverse()) {
    await broker.nack('q', message.receipt, { requeue: false });
  }
  // Delayed ones of the highest priority, due in the opposite of their order.
  for (let i = 0; i < 3; i++) {
    await broker.publish('dlq', [{
      id: `d${i}`, body: text(`d${i}`), priority: 9, delayMs: 60_000 - i * 1000,
    }]);
  }
}

/** Ids of what `back` holds after each redrive of `max`. */
async function redriveInSteps(broker: Broker, maxes: number[]): Promise<string[][]> {
  const steps: string[][] = [];
  for (const max of maxes) {
    await broker.redrive('dlq', { to: 'back', max });
    const listed = await broker.peek('back', { limit: 100, offset: 0 });
    steps.push(listed.map((m) => m.id).sort());
  }
  return steps;
}

describe('redrive with max, cold against memory', () => {
  for (const restart of [false, true]) {
    it(`moves the messages first in delivery order${restart ? ', after a restart' : ''}`,
      async () => {
        const results: string[][][] = [];
        for (const hot of [1_000_000, 3]) {
          const dir = tempDir();
          const clock = new ManualClock();
          const options = { clock: clock.read, hotReadyLimit: hot, hotMemoryBytes: 0 };
          let broker = await openBroker(dir.path, options);
          try {
            await fill(broker);
            if (restart) {
              await broker.close();
              broker = await openBroker(dir.path, options);
            }
            results.push(await redriveInSteps(broker, [2, 3, 6, 2]));
          } finally {
            await broker.close();
            dir.remove();
          }
        }

        const [memory, cold] = results;
        assert.deepEqual(cold, memory);
        // By priority then seq: m3 m6 (9), m1 m4 m9 (5), m8 (3), m0 m2 m7 (1),
        // m5 (0); then the delayed by due time: d2 d1 d0.
        const order = [
          'm3', 'm6', 'm1', 'm4', 'm9', 'm8', 'm0', 'm2', 'm7', 'm5', 'd2', 'd1', 'd0',
        ];
        assert.deepEqual(memory, [2, 5, 11, 13].map((n) => order.slice(0, n).sort()));
      });
  }
});
