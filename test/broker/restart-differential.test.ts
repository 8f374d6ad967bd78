// A restart against none (issue #3): two brokers with a tiny hot window
// get the same random publishes (priorities, delays, a FIFO group),
// receives, acks, nacks with and without a delay, dead-letters and
// redrives; one of them restarts now and then. A restart puts delayed,
// retried, FIFO and dead-lettered messages back from the ledger and the
// heads of their records (broker/rebuild.ts), so after it every receive
// must hand out the same messages with the same attempts, and every
// waiting message must list with the same state, attempts and due time.
//
// Leases are not logged, so a restart delivers in-flight messages again;
// both sides ack what they have in flight before one restarts. A FIFO
// queue's groups take turns in the order they became ready, which a
// restart resets to seq order (fifo-groups.ts): the random queue has one
// group, and a second test checks many groups one by one.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { PeekedMessage } from '../../src/broker/types.js';
import { ManualClock, seededRandom, text } from '../helpers.js';
import { QUEUES, randomOp, Side, step, type OpMix } from './differential.js';

// Purges are left to the cold differential, which restarts too.
const MIX: OpMix = {
  upTo: { publish: 0.4, receive: 0.62, settle: 0.84, time: 0.92, redrive: 0.95, purge: 0.95 },
  fifoOneIn: 3,
  delayedOneIn: 3,
  groups: 1,
  partialRedrives: false,
};

// Both ack before a restart op; only the first side then restarts.
const restarting = { hotReadyLimit: 3, restarts: true, ackBeforeRestart: true };
const steady = { hotReadyLimit: 3, restarts: false, ackBeforeRestart: true };

/** Every waiting message of a queue, by id: what a restart must keep. */
function waiting(side: Side, queue: string): Omit<PeekedMessage, 'body'>[] {
  const listed = side.broker.peek(queue, { offset: 0, limit: 1000 })
    .filter((m) => m.state !== 'in-flight')
    .map(({ body, ...rest }) => ({ ...rest, bytes: body.toString() }));
  return listed.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}


describe('a restart against none', () => {
  const seeds = (process.env.RESTART_DIFF_SEEDS ?? '1,2,3,4,5,6').split(',').map(Number);
  for (const seed of seeds) {
    it(`seed ${seed}: same deliveries, attempts, due times and counts`, async () => {
      const clock = new ManualClock();
      const sides = [new Side(clock, restarting), new Side(clock, steady)];
      for (const side of sides) {
        await side.open();
        await side.createQueues({ q: 4, f: 3 });
      }
      const [restarted, notRestarted] = sides;
      const next = seededRandom(seed);
      let restarts = 0;
      try {
        for (let n = 0; n < 500; n++) {
          const op = randomOp(next, n, MIX);
          const where = `step ${n} ${JSON.stringify(op)}`;
          // One clock for both: time moves once.
          if (op.kind === 'time') clock.advance(op.ms);
          if (op.kind === 'restart') restarts++;
          assert.deepEqual(await step(restarted, op), await step(notRestarted, op), where);
          assert.deepEqual(restarted.stats(), notRestarted.stats(), `counts after ${where}`);
          if (op.kind !== 'restart') continue;
          for (const queue of QUEUES) {
            const message = `${queue} ${where}`;
            assert.deepEqual(waiting(restarted, queue), waiting(notRestarted, queue), message);
          }
        }
        assert.ok(restarts >= 10, `${restarts} restarts`);
      } finally {
        for (const side of sides) await side.close();
      }
    });
  }

  it('puts back many FIFO groups with their order, attempts and due times', async () => {
    const clock = new ManualClock();
    const sides = [new Side(clock, restarting), new Side(clock, steady)];
    for (const side of sides) {
      await side.open();
      await side.broker.createQueue('f', { fifo: true, maxAttempts: 10 });
      for (let i = 0; i < 200; i++) {
        await side.broker.publish('f', [{
          body: text(`m${i}`),
          group: `g${i % 23}`,
          delayMs: i % 5 === 0 ? 100 * (i % 7) : undefined,
        }]);
      }
      // Every group's head fails once, so heads are retried with a delay.
      const heads = await side.broker.receive('f', { max: 200, waitMs: 0 });
      for (const [k, head] of heads.entries()) {
        await side.broker.nack('f', head.receipt, { delayMs: 50 * (k % 4) });
      }
    }
    await sides[0].broker.close();
    await sides[0].open();

    const delivered = sides.map(() => new Map<string, string[]>());
    for (let round = 0; round < 60; round++) {
      clock.advance(25);
      for (const [s, side] of sides.entries()) {
        side.broker.runDue();
        for (;;) {
          const got = await side.broker.receive('f', { max: 10, waitMs: 0 });
          if (got.length === 0) break;
          for (const m of got) {
            const seen = delivered[s].get(m.group as string) ?? [];
            seen.push(`${m.body.toString()}@${clock.now}#${m.attempt}`);
            delivered[s].set(m.group as string, seen);
          }
          await side.broker.ack('f', got.map((m) => m.receipt));
        }
      }
    }
    try {
      assert.equal([...delivered[1].values()].flat().length, 200);
      assert.deepEqual(delivered[0], delivered[1]);
    } finally {
      for (const side of sides) await side.close();
    }
  });
});
