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

import type { Broker } from '../../src/broker/broker.js';
import type { PeekedMessage } from '../../src/broker/types.js';
import { ManualClock, openBroker, seededRandom, tempDir, text } from '../helpers.js';

class Side {
  broker!: Broker;
  readonly dir = tempDir();
  readonly receipts = new Map<string, string[]>();

  constructor(readonly clock: ManualClock, readonly restarts: boolean) {}

  async open(): Promise<void> {
    this.broker = await openBroker(this.dir.path, {
      clock: this.clock.read, random: () => 0.5, hotReadyLimit: 3,
    });
    this.receipts.clear();
  }

  async ackAll(): Promise<void> {
    for (const [queue, receipts] of this.receipts) {
      if (receipts.length > 0) await this.broker.ack(queue, receipts);
    }
    this.receipts.clear();
  }

  async close(): Promise<void> {
    await this.broker.close();
    this.dir.remove();
  }
}

const QUEUES = ['q', 'f', 'dlq'];

type Op =
  | { kind: 'publish'; queue: string; inputs: { id: string; body: string; priority?: number;
    delayMs?: number; group?: string; headers?: Record<string, string> }[] }
  | { kind: 'receive'; queue: string; max: number }
  | { kind: 'settle'; queue: string; pick: number; how: 'ack' | 'nack' | 'delay' | 'reject';
    delayMs: number }
  | { kind: 'time'; ms: number }
  | { kind: 'redrive' }
  | { kind: 'restart' };

async function step(side: Side, op: Op): Promise<unknown> {
  const b = side.broker;
  switch (op.kind) {
    case 'publish':
      return b.publish(op.queue, op.inputs.map((input) => ({ ...input, body: text(input.body) })));
    case 'receive': {
      const got = await b.receive(op.queue, { max: op.max, waitMs: 0 });
      const held = side.receipts.get(op.queue) ?? [];
      side.receipts.set(op.queue, [...held, ...got.map((m) => m.receipt)]);
      return got.map((m) => ({ body: m.body.toString(), headers: m.headers, attempt: m.attempt,
        group: m.group, priority: m.priority, id: m.id, publishedAt: m.publishedAt }));
    }
    case 'settle': {
      const receipts = side.receipts.get(op.queue) ?? [];
      if (receipts.length === 0) return null;
      const receipt = receipts.splice(op.pick % receipts.length, 1)[0];
      if (op.how === 'ack') return b.ack(op.queue, [receipt]);
      // A reason on every other nack: with one, the nack logs a `published`
      // copy with headers; without, a `retried` record only.
      return b.nack(op.queue, receipt, {
        requeue: op.how !== 'reject', delayMs: op.how === 'delay' ? op.delayMs : undefined,
        reason: op.pick % 2 === 0 ? `r${op.pick}` : undefined,
      });
    }
    case 'time':
      b.runDue();
      return null;
    case 'redrive':
      return b.redrive('dlq', {});
    case 'restart':
      await side.ackAll();
      if (side.restarts) {
        await b.close();
        await side.open();
      }
      return null;
  }
}

function randomOp(next: () => number, n: number): Op {
  const pick = (k: number) => Math.floor(next() * k);
  const roll = next();
  if (roll < 0.4) {
    const queue = pick(3) === 0 ? 'f' : 'q';
    return {
      kind: 'publish', queue,
      inputs: Array.from({ length: 1 + pick(4) }, (_, i) => ({
        id: `m${n}.${i}`,
        body: `m${n}.${i}` + 'x'.repeat(pick(40)),
        priority: pick(3) === 0 ? pick(10) : undefined,
        delayMs: pick(3) === 0 ? pick(5000) : undefined,
        group: queue === 'f' ? 'g' : undefined,
        headers: pick(2) === 0 ? { h: `v${n}` } : undefined,
      })),
    };
  }
  if (roll < 0.62) return { kind: 'receive', queue: QUEUES[pick(3)], max: 1 + pick(5) };
  if (roll < 0.84) {
    const how = (['ack', 'nack', 'delay', 'reject'] as const)[pick(4)];
    return { kind: 'settle', queue: QUEUES[pick(3)], pick: pick(100), how, delayMs: pick(3000) };
  }
  if (roll < 0.92) return { kind: 'time', ms: pick(2000) };
  if (roll < 0.95) return { kind: 'redrive' };
  return { kind: 'restart' };
}

/** Every waiting message of a queue, by id: what a restart must keep. */
function waiting(side: Side, queue: string): Omit<PeekedMessage, 'body'>[] {
  const listed = side.broker.peek(queue, { offset: 0, limit: 1000 })
    .filter((m) => m.state !== 'in-flight')
    .map(({ body, ...rest }) => ({ ...rest, bytes: body.toString() }));
  return listed.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

const stats = (side: Side) => QUEUES.map((name) => {
  const { ready, delayed, inFlight } = side.broker.getQueue(name).stats;
  return { name, ready, delayed, inFlight };
});

describe('a restart against none', () => {
  const seeds = (process.env.RESTART_DIFF_SEEDS ?? '1,2,3,4,5,6').split(',').map(Number);
  for (const seed of seeds) {
    it(`seed ${seed}: same deliveries, attempts, due times and counts`, async () => {
      const clock = new ManualClock();
      const sides = [new Side(clock, true), new Side(clock, false)];
      for (const side of sides) {
        await side.open();
        await side.broker.createQueue('dlq', {});
        await side.broker.createQueue('q', { deadLetter: 'dlq', maxAttempts: 4 });
        await side.broker.createQueue('f', { fifo: true, deadLetter: 'dlq', maxAttempts: 3 });
      }
      const [restarted, steady] = sides;
      const next = seededRandom(seed);
      let restarts = 0;
      try {
        for (let n = 0; n < 500; n++) {
          const op = randomOp(next, n);
          const where = `step ${n} ${JSON.stringify(op)}`;
          // One clock for both: time moves once.
          if (op.kind === 'time') clock.advance(op.ms);
          if (op.kind === 'restart') restarts++;
          assert.deepEqual(await step(restarted, op), await step(steady, op), where);
          assert.deepEqual(stats(restarted), stats(steady), `counts after ${where}`);
          if (op.kind !== 'restart') continue;
          for (const queue of QUEUES) {
            const message = `${queue} ${where}`;
            assert.deepEqual(waiting(restarted, queue), waiting(steady, queue), message);
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
    const sides = [new Side(clock, true), new Side(clock, false)];
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
