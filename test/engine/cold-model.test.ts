// The cold tier against the in-memory model (issue #3): the same random
// steps (publishes with priorities, groups and delays; receives; acks,
// nacks with and without requeue or a delay; releases; dead-lettering into
// a second queue; the clock moving) run on a queue that keeps everything
// in memory and on one with a window of one to three messages, whose
// dead-letter queue is cold too. Every receive must hand out the same
// messages in the same order with the same attempt numbers, and the counts
// and listings must agree after every step: priority order, FIFO group
// order and fairness, delays and backoff are exactly as in memory.
//
// TTLs are left out: a cold message expires when it is read back rather
// than on time (cold-tier.ts), which the cold test covers on its own.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { QueueEngine, type Outcome } from '../../src/engine/queue.js';
import { DEFAULT_SETTINGS, type Message, type QueueSettings } from '../../src/engine/types.js';

import { RecordLog } from './record-log.js';

/** A queue and its dead-letter queue, hot or cold. */
class Pair {
  readonly queue: QueueEngine;
  readonly dlq: QueueEngine;
  readonly receipts: string[] = [];

  constructor(settings: QueueSettings, readonly log: RecordLog | null, hot: number) {
    const options = log === null ? {} : { pageIn: log.pageIn, hotReadyLimit: hot };
    this.queue = new QueueEngine('q', settings, { random: () => 0.5, ...options });
    this.dlq = new QueueEngine('dlq', { ...settings, deadLetter: null, maxAttempts: 0 }, {
      random: () => 0.5,
      ...options,
    });
  }

  /** What the broker does with outcomes: retries land, the dead move. */
  settle(now: number): void {
    for (const engine of [this.queue, this.dlq]) {
      for (const outcome of engine.takeOutcomes()) this.settleOne(engine, outcome, now);
    }
  }

  private settleOne(engine: QueueEngine, outcome: Outcome, now: number): void {
    const { message } = outcome;
    if (outcome.kind === 'retry') {
      engine.landed(message.seq);
      return;
    }
    if (engine === this.dlq) return;
    const moved: Message = {
      ...message,
      headers: { ...message.headers, reason: outcome.reason },
      failures: 0,
      availableAt: now,
      state: 'ready',
      lease: null,
    };
    this.dlq.enqueue(moved, now);
    // The `published` copy lands after the move, as the broker logs it.
    this.log?.write(moved);
    this.dlq.landed(moved.seq, moved.headers);
  }
}

type Step =
  | { publish: { priority: number; group: number; delay: number }[] }
  | { receive: number; from: 'q' | 'dlq'; leaseMs: number }
  | { settle: 'ack' | 'nack' | 'reject' | 'release' | 'nack-delay'; which: number }
  | { rejectAll: true }
  | { advance: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    arbitrary: fc.record({
      publish: fc.array(
        fc.record({
          priority: fc.integer({ min: 0, max: 3 }),
          group: fc.integer({ min: 0, max: 3 }),
          delay: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 })),
        }),
        { minLength: 1, maxLength: 8 },
      ),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      receive: fc.integer({ min: 1, max: 5 }),
      from: fc.constantFrom('q' as const, 'q' as const, 'dlq' as const),
      leaseMs: fc.integer({ min: 5, max: 50 }),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      settle: fc.constantFrom('ack' as const, 'nack' as const, 'reject' as const,
        'release' as const, 'nack-delay' as const),
      which: fc.nat(),
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ rejectAll: fc.constant(true as const) }), weight: 1 },
  { arbitrary: fc.record({ advance: fc.integer({ min: 1, max: 30 }) }), weight: 1 },
);

/** What a listing shows, in its order (list() reads cold ones back). */
const listing = (engine: QueueEngine) =>
  engine.list(0, 10_000).map((m) => [m.id, m.state, m.failures, m.availableAt]);

/** How often the cold side held messages cold, so the test tests something. */
const seen = { coldSteps: 0, coldDelayedSteps: 0, coldDlqSteps: 0 };

function run(settings: QueueSettings, steps: Step[], hot: number): void {
  const log = new RecordLog();
  const model = new Pair(settings, null, 0);
  const cold = new Pair(settings, log, hot);
  let now = 1_000;

  steps.forEach((step, at) => {
    const where = `step ${at}: ${JSON.stringify(step)}`;
    if ('publish' in step) {
      for (const { priority, group, delay } of step.publish) {
        const seq = log.next();
        const message: Message = {
          seq,
          id: `m${seq}`,
          priority,
          group: settings.fifo ? `g${group}` : null,
          headers: {},
          body: Buffer.from(`body of ${seq}`),
          publishedAt: now,
          availableAt: now + delay,
          expiresAt: null,
          failures: 0,
          state: 'ready',
          lease: null,
        };
        log.write(message);
        model.queue.enqueue({ ...message }, now, true);
        cold.queue.enqueue({ ...message }, now, true);
      }
    } else if ('receive' in step) {
      const take = (pair: Pair) => {
        const engine = step.from === 'q' ? pair.queue : pair.dlq;
        const deliveries = engine.receive(now, step.receive, step.leaseMs);
        for (const d of deliveries) pair.receipts.push(`${step.from}:${d.receipt}`);
        return deliveries.map((d) => [d.message.id, d.attempt, d.message.body.toString()]);
      };
      assert.deepEqual(take(cold), take(model), where);
    } else if ('settle' in step) {
      for (const pair of [model, cold]) {
        if (pair.receipts.length === 0) continue;
        const [from, receipt] = pair.receipts
          .splice(step.which % pair.receipts.length, 1)[0].split(':');
        const engine = from === 'q' ? pair.queue : pair.dlq;
        if (step.settle === 'ack') engine.ack(receipt);
        else if (step.settle === 'release') engine.release(receipt, now);
        else {
          engine.nack(receipt, now, {
            requeue: step.settle !== 'reject',
            delayMs: step.settle === 'nack-delay' ? 17 : undefined,
          });
        }
        pair.settle(now);
      }
    } else if ('rejectAll' in step) {
      // Everything in flight from the queue dies at once: the dead-letter
      // queue grows past its window.
      for (const pair of [model, cold]) {
        const kept = pair.receipts.filter((entry) => !entry.startsWith('q:'));
        for (const entry of pair.receipts) {
          if (entry.startsWith('q:')) pair.queue.nack(entry.slice(2), now, { requeue: false });
        }
        pair.receipts.splice(0, pair.receipts.length, ...kept);
        pair.settle(now);
      }
    } else {
      now += step.advance;
      for (const pair of [model, cold]) {
        pair.queue.tick(now);
        pair.dlq.tick(now);
        pair.settle(now);
      }
    }
    if (cold.queue.coldCount > 0) seen.coldSteps++;
    if (cold.dlq.coldCount > 0) seen.coldDlqSteps++;
    if (cold.queue.coldCount > 0 && cold.queue.counts.delayed > 0) seen.coldDelayedSteps++;
    for (const name of ['queue', 'dlq'] as const) {
      assert.deepEqual(cold[name].counts, model[name].counts, `${where}: ${name} counts`);
      assert.equal(cold[name].size, model[name].size, `${where}: ${name} size`);
      assert.equal(cold[name].nextWakeAt(), model[name].nextWakeAt(), `${where}: ${name} wake`);
      assert.deepEqual(listing(cold[name]), listing(model[name]), `${where}: ${name} listing`);
    }
  });

  // Whatever is left drains the same way once every delay has ended.
  now += 1_000_000;
  for (const pair of [model, cold]) {
    pair.queue.tick(now);
    pair.dlq.tick(now);
  }
  for (const name of ['queue', 'dlq'] as const) {
    const drain = (pair: Pair) =>
      pair[name].receive(now, 10_000, 1000).map((d) => [d.message.id, d.attempt]);
    assert.deepEqual(drain(cold), drain(model), `drain ${name}`);
  }
}

const settingsFor = (fifo: boolean): QueueSettings => ({
  ...DEFAULT_SETTINGS,
  fifo,
  maxAttempts: 3,
  deadLetter: 'dlq',
  backoff: { initialMs: 10, multiplier: 2, maxMs: 40, jitter: 0 },
});

describe('cold tier against the in-memory model', () => {
  for (const fifo of [false, true]) {
    it(`${fifo ? 'FIFO' : 'best-effort'}: same deliveries, attempts and counts`, () => {
      Object.assign(seen, { coldSteps: 0, coldDelayedSteps: 0, coldDlqSteps: 0 });
      fc.assert(
        fc.property(fc.array(step, { minLength: 20, maxLength: 100, size: 'max' }), fc.integer({ min: 1, max: 3 }),
          (steps, hot) => run(settingsFor(fifo), steps, hot)),
        { numRuns: 200 },
      );
      assert.ok(seen.coldSteps > 200 && seen.coldDlqSteps > 10 && seen.coldDelayedSteps > 100,
        `the cold side went cold: ${JSON.stringify(seen)}`);
    });
  }

  it('keeps a dead-letter queue filled by moves cold past its window', () => {
    const log = new RecordLog();
    const pair = new Pair(settingsFor(false), log, 4);
    const now = 1_000;
    for (let i = 0; i < 50; i++) {
      const seq = log.next();
      const message: Message = {
        seq, id: `m${seq}`, priority: 0, group: null, headers: {}, body: Buffer.from('x'),
        publishedAt: now, availableAt: now, expiresAt: null, failures: 0, state: 'ready',
        lease: null,
      };
      log.write(message);
      pair.queue.enqueue({ ...message }, now, true);
    }
    for (const d of pair.queue.receive(now, 50, 1000)) {
      pair.queue.nack(d.receipt, now, { requeue: false });
    }
    pair.settle(now);
    assert.equal(pair.dlq.counts.ready, 50);
    assert.equal(pair.dlq.coldCount, 46, 'all but the window of 4 are cold');
    const drained = pair.dlq.receive(now, 100, 1000);
    assert.equal(drained.length, 50);
    assert.equal(drained[10].message.headers.reason, 'rejected', 'headers read back from the copy');
  });
});
