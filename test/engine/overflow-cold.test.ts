// reject-lowest-priority queues with a cold tier (issue #3) against the
// victim choice as it was when they kept every message as an object: a
// newcomer of higher priority displaces the lowest-priority waiting
// message, the one of that priority that became waiting first (published,
// retried or released last means last), and one of equal or lower
// priority is refused.
//
// Random publishes (priorities, delays, batches), receives, acks, nacks
// with and without a delay, releases, rejects and lease expiries run on a
// queue with a window of one to three messages and on one that keeps all
// in memory. Both must refuse and displace the same messages and deliver
// the same ones with the same attempts; and for single publishes under
// maxLength, the victim must be the one a reference model names: per
// priority, a list of ids in the order they became waiting, kept from the
// steps and outcomes alone (the old per-priority Set's order).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { QueueEngine } from '../../src/engine/queue.js';
import { DEFAULT_SETTINGS, type Message, type QueueSettings } from '../../src/engine/types.js';

import { RecordLog } from './record-log.js';

/** Ids per priority in the order they became waiting. */
class ReferenceOrder {
  readonly byPriority = new Map<number, string[]>();
  readonly priorityOf = new Map<string, number>();

  waits(id: string, priority: number): void {
    this.priorityOf.set(id, priority);
    const list = this.byPriority.get(priority) ?? [];
    list.push(id);
    this.byPriority.set(priority, list);
  }

  leaves(id: string): void {
    const list = this.byPriority.get(this.priorityOf.get(id) as number) ?? [];
    const at = list.indexOf(id);
    if (at >= 0) list.splice(at, 1);
  }

  get count(): number {
    let count = 0;
    for (const list of this.byPriority.values()) count += list.length;
    return count;
  }

  /**
   * Who a newcomer of `priority` displaces under `maxLength`: lowest
   * priorities first, oldest first, as many as the queue is over (retries
   * may take it past the limit); none when there are not enough.
   */
  victimsFor(priority: number, maxLength: number): string[] {
    const needed = this.count + 1 - maxLength;
    const victims: string[] = [];
    for (let p = 0; p < priority && victims.length < needed; p++) {
      for (const id of this.byPriority.get(p) ?? []) {
        if (victims.length === needed) break;
        victims.push(id);
      }
    }
    return victims.length < needed ? [] : victims;
  }
}

type Step =
  | { publish: { priority: number; delay: number; bytes: number }[] }
  | { receive: number }
  | { settle: 'ack' | 'nack' | 'nack-delay' | 'release' | 'reject'; which: number }
  | { advance: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    arbitrary: fc.record({
      publish: fc.array(fc.record({
        priority: fc.integer({ min: 0, max: 4 }),
        delay: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 40 })),
        bytes: fc.integer({ min: 1, max: 20 }),
      }), { minLength: 1, maxLength: 3 }),
    }),
    weight: 4,
  },
  { arbitrary: fc.record({ receive: fc.integer({ min: 1, max: 4 }) }), weight: 2 },
  {
    arbitrary: fc.record({
      settle: fc.constantFrom('ack' as const, 'nack' as const, 'nack-delay' as const,
        'release' as const, 'reject' as const),
      which: fc.nat(),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ advance: fc.integer({ min: 1, max: 60 }) }), weight: 1 },
);

class Side {
  readonly engine: QueueEngine;
  /** Leases as `receipt id`. */
  readonly receipts: string[] = [];

  constructor(settings: QueueSettings, readonly log: RecordLog | null, hot: number) {
    const cold = log === null ? {} : { pageIn: log.pageIn, hotReadyLimit: hot };
    this.engine = new QueueEngine('q', settings, { random: () => 0.5, ...cold });
  }

  /** Outcomes as the broker meets them: retries land, the dead are gone. */
  outcomes(): string[] {
    const seen: string[] = [];
    for (const outcome of this.engine.takeOutcomes()) {
      if (outcome.kind === 'retry') this.engine.landed(outcome.message.seq);
      seen.push(`${outcome.kind === 'retry' ? 'retry' : outcome.reason}:${outcome.message.id}`);
    }
    return seen;
  }
}

const seen = { coldSteps: 0, displaced: 0, checkedVictims: 0 };

function run(settings: QueueSettings, steps: Step[], hot: number, reference: boolean): void {
  const log = new RecordLog();
  const cold = new Side(settings, log, hot);
  const memory = new Side(settings, null, 0);
  const model = new ReferenceOrder();
  let now = 1_000;
  let seq = 0;

  // The model follows the outcomes: a retry waits again, the dead leave.
  const follow = (outcomes: string[]) => {
    for (const outcome of outcomes) {
      const [kind, id] = outcome.split(':');
      if (kind === 'retry') model.waits(id, model.priorityOf.get(id) as number);
      else model.leaves(id);
      if (kind === 'overflow') seen.displaced++;
    }
  };

  steps.forEach((s, at) => {
    const where = `step ${at}: ${JSON.stringify(s)}`;
    if ('publish' in s) {
      const newcomers = s.publish.map(({ priority, bytes }) => ({ priority, bytes }));
      const single = reference && newcomers.length === 1;
      const expected = single
        ? model.victimsFor(newcomers[0].priority, settings.maxLength as number)
        : [];
      const refusals = cold.engine.admit(newcomers, false);
      assert.deepEqual(refusals, memory.engine.admit(newcomers, false), where);
      const displaced = cold.outcomes();
      assert.deepEqual(displaced, memory.outcomes(), `${where}: displaced`);
      if (single) {
        const victims = expected.map((id) => `overflow:${id}`);
        assert.deepEqual(displaced, victims, `${where}: the reference victims`);
        if (victims.length > 0) seen.checkedVictims++;
      }
      follow(displaced);
      s.publish.forEach(({ priority, delay, bytes }, k) => {
        if (refusals[k] !== null) return;
        const message: Message = {
          seq: ++seq, id: `m${seq}`, priority, group: null, headers: {},
          body: Buffer.alloc(bytes, 120), publishedAt: now, availableAt: now + delay,
          expiresAt: null, failures: 0, state: 'ready', lease: null,
        };
        log.write(message);
        cold.engine.enqueue({ ...message }, now, true);
        memory.engine.enqueue({ ...message }, now, true);
        model.waits(message.id, priority);
      });
      for (const side of [cold, memory]) {
        side.engine.settleReservation(newcomers.length, newcomers.reduce((n, c) => n + c.bytes, 0));
      }
    } else if ('receive' in s) {
      const take = (side: Side) => side.engine.receive(now, s.receive, 30).map((d) => {
        side.receipts.push(`${d.receipt} ${d.message.id}`);
        return [d.message.id, d.attempt, d.message.body.length];
      });
      const got = take(cold);
      assert.deepEqual(got, take(memory), where);
      for (const [id] of got) model.leaves(id as string);
    } else if ('settle' in s) {
      const results = [cold, memory].map((side) => {
        if (side.receipts.length === 0) return [];
        const [receipt, id] = side.receipts.splice(s.which % side.receipts.length, 1)[0].split(' ');
        let released = false;
        if (s.settle === 'ack') side.engine.ack(receipt);
        else if (s.settle === 'release') released = side.engine.release(receipt, now);
        else {
          side.engine.nack(receipt, now, {
            requeue: s.settle !== 'reject', delayMs: s.settle === 'nack-delay' ? 17 : undefined,
          });
        }
        // A release (of a lease still current) waits again without an outcome.
        return released ? [`retry:${id}`, ...side.outcomes()] : side.outcomes();
      });
      assert.deepEqual(results[0], results[1], where);
      follow(results[0]);
    } else {
      now += s.advance;
      cold.engine.tick(now);
      memory.engine.tick(now);
      const expired = cold.outcomes();
      assert.deepEqual(expired, memory.outcomes(), where);
      follow(expired);
    }
    if (cold.engine.coldCount > 0) seen.coldSteps++;
    assert.deepEqual(cold.engine.counts, memory.engine.counts, `${where}: counts`);
    const { ready, delayed } = memory.engine.counts;
    if (reference) assert.equal(model.count, ready + delayed, `${where}: the model's count`);
  });
}

const settingsWith = (limits: Partial<QueueSettings>): QueueSettings => ({
  ...DEFAULT_SETTINGS,
  ...limits,
  overflow: 'reject-lowest-priority',
  maxAttempts: 4,
  backoff: { initialMs: 10, multiplier: 2, maxMs: 40, jitter: 0 },
});

describe('reject-lowest-priority with a cold tier', () => {
  const cases = [
    { name: 'maxLength', limits: { maxLength: 6 }, reference: true },
    { name: 'maxBytes', limits: { maxBytes: 60 }, reference: false },
  ];
  for (const { name, limits, reference } of cases) {
    it(`${name}: same refusals, victims and deliveries as in memory`, () => {
      Object.assign(seen, { coldSteps: 0, displaced: 0, checkedVictims: 0 });
      fc.assert(
        fc.property(
          fc.array(step, { minLength: 20, maxLength: 120, size: 'max' }),
          fc.integer({ min: 1, max: 3 }),
          (steps, hot) => run(settingsWith(limits), steps, hot, reference),
        ),
        { numRuns: 300 },
      );
      assert.ok(seen.coldSteps > 500 && seen.displaced > 200, JSON.stringify(seen));
      if (reference) assert.ok(seen.checkedVictims > 100, JSON.stringify(seen));
    });
  }
});
