// The broker with a tiny hot window (3) against one that keeps everything
// in memory: the same random publishes (priorities, delays, FIFO groups),
// receives, acks, nacks with and without a delay, dead-lettering, redrives,
// purges and restarts must hand out the same messages, bytes, headers and
// attempts in the same order, with the same counts after every step.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ManualClock, seededRandom } from '../helpers.js';
import { randomOp, Side, step, type OpMix } from './differential.js';

const MIX: OpMix = {
  upTo: { publish: 0.4, receive: 0.65, settle: 0.85, time: 0.93, redrive: 0.96, purge: 0.975 },
  fifoOneIn: 4,
  delayedOneIn: 5,
  groups: 3,
  partialRedrives: true,
};

describe('cold tier against memory, through the broker', () => {
  const seeds = (process.env.COLD_DIFF_SEEDS ?? '1,2,3,4,5,6').split(',').map(Number);
  for (const seed of seeds) {
    it(`seed ${seed}: same deliveries and counts`, async () => {
      const clock = new ManualClock();
      // Both restart when the run says so; their leases come back alike.
      const cold = new Side(clock, { hotReadyLimit: 3, restarts: true, ackBeforeRestart: false });
      const hot = new Side(clock, {
        hotReadyLimit: 1_000_000, restarts: true, ackBeforeRestart: false,
      });
      for (const side of [cold, hot]) {
        await side.open();
        await side.createQueues({ q: 3, f: 2 });
      }
      const next = seededRandom(seed);
      try {
        for (let n = 0; n < 400; n++) {
          const op = randomOp(next, n, MIX);
          // One clock for both: time moves once.
          if (op.kind === 'time') clock.advance(op.ms);
          const a = await step(cold, op);
          const b = await step(hot, op);
          assert.deepEqual(a, b, `step ${n} ${JSON.stringify(op)}`);
          assert.deepEqual(cold.stats(), hot.stats(), `counts after step ${n} ${JSON.stringify(op)}`);
        }
      } finally {
        for (const side of [cold, hot]) await side.close();
      }
    });
  }
});
