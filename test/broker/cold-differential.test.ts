// The broker with a tiny hot window (3) against one that keeps everything
// in memory: the same random publishes (priorities, delays, FIFO groups),
// receives, acks, nacks with and without a delay, dead-lettering, redrives,
// purges and restarts must hand out the same messages, bytes, headers and
// attempts in the same order, with the same counts after every step.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import { ManualClock, openBroker, seededRandom, tempDir, text } from '../helpers.js';

class Side {
  broker!: Broker;
  readonly dir = tempDir();
  readonly receipts = new Map<string, string[]>();

  constructor(readonly clock: ManualClock, readonly hot: number) {}

  async open(): Promise<void> {
    this.broker = await openBroker(this.dir.path, {
      clock: this.clock.read, random: () => 0.5, hotReadyLimit: this.hot,
    });
    this.receipts.clear();
  }
}

const QUEUES = ['q', 'f', 'dlq'];

async function step(side: Side, op: Op): Promise<unknown> {
  const b = side.broker;
  switch (op.kind) {
    case 'publish':
      return b.publish(op.queue, op.inputs.map((input) => ({ ...input, body: text(input.body) })));
    case 'receive': {
      const got = await b.receive(op.queue, { max: op.max, waitMs: 0 });
      side.receipts.set(op.queue, [...(side.receipts.get(op.queue) ?? []), ...got.map((m) => m.receipt)]);
      return got.map((m) => ({ body: m.body.toString('hex'), headers: m.headers, attempt: m.attempt,
        group: m.group, priority: m.priority, id: m.id }));
    }
    case 'settle': {
      const receipts = side.receipts.get(op.queue) ?? [];
      if (receipts.length === 0) return null;
      const receipt = receipts.splice(op.pick % receipts.length, 1)[0];
      if (op.how === 'ack') return b.ack(op.queue, [receipt]);
      return b.nack(op.queue, receipt, {
        requeue: op.how !== 'reject', delayMs: op.how === 'delay' ? op.delayMs : undefined,
        reason: `r${op.pick}`,
      });
    }
    case 'time':
      side.clock.advance(op.ms);
      b.runDue();
      return null;
    case 'redrive':
      return b.redrive('dlq', { max: op.max });
    case 'purge':
      return b.purgeQueue(op.queue);
    case 'restart':
      await b.close();
      await side.open();
      return null;
  }
}

type Op =
  | { kind: 'publish'; queue: string; inputs: { id: string; body: string; priority?: number; delayMs?: number;
    group?: string; headers?: Record<string, string> }[] }
  | { kind: 'receive'; queue: string; max: number }
  | { kind: 'settle'; queue: string; pick: number; how: 'ack' | 'nack' | 'delay' | 'reject'; delayMs: number }
  | { kind: 'time'; ms: number }
  | { kind: 'redrive'; max?: number }
  | { kind: 'purge'; queue: string }
  | { kind: 'restart' };

function randomOp(next: () => number, n: number): Op {
  const pick = (k: number) => Math.floor(next() * k);
  const roll = next();
  if (roll < 0.4) {
    const queue = pick(4) === 0 ? 'f' : 'q';
    return {
      kind: 'publish', queue,
      inputs: Array.from({ length: 1 + pick(4) }, (_, i) => ({
        id: `m${n}.${i}`,
        body: `m${n}.${i}` + 'x'.repeat(pick(40)),
        priority: pick(3) === 0 ? pick(10) : undefined,
        delayMs: pick(5) === 0 ? pick(5000) : undefined,
        group: queue === 'f' ? `g${pick(3)}` : undefined,
        headers: pick(2) === 0 ? { h: `v${n}` } : undefined,
      })),
    };
  }
  if (roll < 0.65) return { kind: 'receive', queue: QUEUES[pick(3)], max: 1 + pick(5) };
  if (roll < 0.85) {
    const how = (['ack', 'nack', 'delay', 'reject'] as const)[pick(4)];
    return { kind: 'settle', queue: QUEUES[pick(3)], pick: pick(100), how, delayMs: pick(3000) };
  }
  if (roll < 0.93) return { kind: 'time', ms: pick(2000) };
  if (roll < 0.96) return { kind: 'redrive', max: pick(2) === 0 ? 1 + pick(4) : undefined };
  if (roll < 0.975) return { kind: 'purge', queue: QUEUES[pick(3)] };
  return { kind: 'restart' };
}

const stats = (side: Side) => QUEUES.map((name) => {
  const { ready, delayed, inFlight } = side.broker.getQueue(name).stats;
  return { name, ready, delayed, inFlight };
});

describe('cold tier against memory, through the broker', () => {
  const seeds = (process.env.COLD_DIFF_SEEDS ?? '1,2,3,4,5,6').split(',').map(Number);
  for (const seed of seeds) {
    it(`seed ${seed}: same deliveries and counts`, async () => {
      const clock = new ManualClock();
      const cold = new Side(clock, 3);
      const hot = new Side(clock, 1_000_000);
      for (const side of [cold, hot]) {
        await side.open();
        await side.broker.createQueue('dlq', {});
        await side.broker.createQueue('q', { deadLetter: 'dlq', maxAttempts: 3 });
        await side.broker.createQueue('f', { fifo: true, deadLetter: 'dlq', maxAttempts: 2 });
      }
      const next = seededRandom(seed);
      const ops: Op[] = [];
      try {
        for (let n = 0; n < 400; n++) {
          const op = randomOp(next, n);
          ops.push(op);
          // One clock for both: time moves once.
          if (op.kind === 'time') {
            clock.advance(op.ms);
            cold.broker.runDue();
            hot.broker.runDue();
            continue;
          }
          const a = await step(cold, op);
          const b = await step(hot, op);
          assert.deepEqual(a, b, `step ${n} ${JSON.stringify(op)}`);
          assert.deepEqual(stats(cold), stats(hot), `counts after step ${n} ${JSON.stringify(op)}`);
        }
      } finally {
        for (const side of [cold, hot]) {
          await side.broker.close();
          side.dir.remove();
        }
      }
    });
  }
});
