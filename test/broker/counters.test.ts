// CASES.md C20: counters agree with the data. Random publishes, receives,
// acks, nacks, time passing (delays, leases, TTL), dead-letters, redrives,
// purges and restarts; after every step each queue's gauges are compared
// with a full scan of its messages and with what the log holds live, and
// across a restart the figures stay the same (leases end, so in-flight
// messages count as ready).

import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';

import type { Broker } from '../../src/broker/broker.js';
import { ManualClock, openBroker, tempDir, text } from '../helpers.js';

const QUEUES = ['a', 'b', 'a.dlq'] as const;

type Step =
  | { kind: 'publish'; queue: 0 | 1; count: number; priority: number; delayMs: number; ttlMs: number | null; size: number }
  | { kind: 'receive'; queue: 0 | 1 | 2; max: number; leaseMs: number }
  | { kind: 'ack'; pick: number }
  | { kind: 'nack'; pick: number; requeue: boolean }
  | { kind: 'advance'; ms: number }
  | { kind: 'redrive' }
  | { kind: 'purge'; queue: 0 | 1 }
  | { kind: 'restart' };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({
    kind: fc.constant('publish' as const),
    queue: fc.constantFrom(0 as const, 1 as const),
    count: fc.integer({ min: 1, max: 4 }),
    priority: fc.integer({ min: 0, max: 9 }),
    delayMs: fc.constantFrom(0, 0, 500, 5000),
    ttlMs: fc.constantFrom(null, null, 1000, 60_000),
    size: fc.integer({ min: 0, max: 300 }),
  }) },
  { weight: 3, arbitrary: fc.record({
    kind: fc.constant('receive' as const),
    queue: fc.constantFrom(0 as const, 1 as const, 2 as const),
    max: fc.integer({ min: 1, max: 5 }),
    leaseMs: fc.constantFrom(200, 30_000),
  }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('ack' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('nack' as const), pick: fc.nat(), requeue: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.constantFrom(100, 600, 2000, 70_000) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'redrive' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('purge' as const), queue: fc.constantFrom(0 as const, 1 as const) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
);

interface Figures {
  ready: number;
  inFlight: number;
  delayed: number;
  total: number;
  bytes: number;
}

/** Each queue's gauges, checked against a scan of its messages. */
function checkedFigures(broker: Broker, context: string): Map<string, Figures> {
  const figures = new Map<string, Figures>();
  let stored = 0;
  for (const name of QUEUES) {
    const { stats } = broker.getQueue(name);
    const scan: Figures = { ready: 0, inFlight: 0, delayed: 0, total: 0, bytes: 0 };
    for (let offset = 0; ; offset += 1000) {
      const page = broker.peek(name, { limit: 1000, offset });
      for (const message of page) {
        if (message.state === 'ready') scan.ready++;
        else if (message.state === 'in-flight') scan.inFlight++;
        else scan.delayed++;
        scan.total++;
        scan.bytes += message.body.length;
      }
      if (page.length < 1000) break;
    }
    const gauges: Figures = {
      ready: stats.ready,
      inFlight: stats.inFlight,
      delayed: stats.delayed,
      total: stats.total,
      bytes: stats.bytes,
    };
    assert.deepEqual(gauges, scan, `${context}: queue ${name} gauges against a scan`);
    assert.equal(gauges.ready + gauges.inFlight + gauges.delayed, gauges.total);
    for (const [key, value] of Object.entries(stats)) {
      assert.ok(typeof value !== 'number' || value >= 0, `${context}: ${name}.${key} = ${value}`);
    }
    stored += scan.total;
    figures.set(name, gauges);
  }
  assert.equal(broker.health().store.liveMessages, stored, `${context}: live in the log`);
  return figures;
}

// What the timer decides (expiry, dead letters, retries) is logged after
// the call that caused it returns; wait, within bounds, for the log to
// catch up. A count that never agrees still fails the check after this.
async function logged(broker: Broker): Promise<void> {
  const total = () => QUEUES.reduce((sum, name) => sum + broker.getQueue(name).stats.total, 0);
  for (let i = 0; i < 100 && broker.health().store.liveMessages !== total(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

it('gauges agree with a full scan and the log through random operations and restarts (C20)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 40 }), async (steps) => {
      const dir = tempDir('usher-c20-');
      const clock = new ManualClock();
      const open = () => openBroker(dir.path, { clock: clock.read, random: () => 0.5 });
      let broker = await open();
      try {
        await broker.createQueue('a', { deadLetter: 'a.dlq', maxAttempts: 2, backoff: { initialMs: 300, jitter: 0 } });
        await broker.createQueue('b', { messageTtlMs: 5000 });
        const held: { queue: string; receipt: string }[] = [];
        let next = 0;

        for (const [index, current] of steps.entries()) {
          const context = `step ${index} (${current.kind})`;
          switch (current.kind) {
            case 'publish':
              await broker.publish(QUEUES[current.queue], Array.from({ length: current.count }, () => ({
                id: `m${next++}`,
                body: text('x'.repeat(current.size)),
                priority: current.priority,
                delayMs: current.delayMs,
                ...(current.ttlMs === null ? {} : { ttlMs: current.ttlMs }),
              })));
              break;
            case 'receive': {
              const queue = QUEUES[current.queue];
              const got = await broker.receive(queue, { max: current.max, waitMs: 0, visibilityTimeoutMs: current.leaseMs });
              held.push(...got.map((m) => ({ queue, receipt: m.receipt })));
              break;
            }
            case 'ack':
            case 'nack': {
              if (held.length === 0) break;
              const [taken] = held.splice(current.pick % held.length, 1);
              if (current.kind === 'ack') await broker.ack(taken.queue, [taken.receipt]);
              else await broker.nack(taken.queue, taken.receipt, { requeue: current.requeue }).catch(() => undefined);
              break;
            }
            case 'advance':
              clock.advance(current.ms);
              broker.runDue();
              break;
            case 'redrive':
              await broker.redrive('a.dlq', {});
              break;
            case 'purge':
              await broker.purgeQueue(QUEUES[current.queue]);
              break;
            case 'restart': {
              await logged(broker);
              const before = checkedFigures(broker, `${context}, before`);
              await broker.close();
              broker = await open();
              held.length = 0;
              const after = checkedFigures(broker, `${context}, after`);
              for (const name of QUEUES) {
                const was = before.get(name)!;
                assert.deepEqual(after.get(name), {
                  ...was,
                  ready: was.ready + was.inFlight,
                  inFlight: 0,
                }, `${context}: ${name} changed across the restart`);
              }
              break;
            }
          }
          await logged(broker);
          checkedFigures(broker, context);
        }
      } finally {
        await broker.close();
        dir.remove();
      }
    }),
    { numRuns: Number(process.env.USHER_C20_RUNS ?? 40) },
  );
});
