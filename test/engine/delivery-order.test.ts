// Listing and drop-oldest against delivery order, with messages that come
// back in behind later ones (README, "Semantics in brief": a redriven
// message keeps the place of its first arrival). Random publishes
// (priorities, delays), receives, acks, nacks with and without a delay,
// releases, rejects, time, and moves back in of what died (as a redrive
// does: the same seq, attempts reset) run on a drop-oldest queue that
// keeps everything in memory and on one with a window of one to three.
// After every step:
// - list() gives every message, waiting ones in delivery order (ready by
//   priority then seq, then delayed by due time then seq), then those in
//   flight by seq; a page from the middle is the same slice of it;
// - drop-oldest displaced exactly the lowest seqs that waited;
// - both queues agree on outcomes, deliveries, listings and counts.
// At the end, what list() shows waiting is what receive() hands out.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { QueueEngine } from '../../src/engine/queue.js';
import { DEFAULT_SETTINGS, type Message, type QueueSettings } from '../../src/engine/types.js';

import { RecordLog } from './record-log.js';

type Step =
  | { publish: { priority: number; delay: number }[] }
  | { receive: number }
  | { settle: 'ack' | 'nack' | 'nack-delay' | 'release' | 'reject'; which: number }
  | { moveBack: number }
  | { advance: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    arbitrary: fc.record({
      publish: fc.array(fc.record({
        priority: fc.integer({ min: 0, max: 3 }),
        delay: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 40 })),
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
    weight: 3,
  },
  { arbitrary: fc.record({ moveBack: fc.integer({ min: 1, max: 4 }) }), weight: 2 },
  { arbitrary: fc.record({ advance: fc.integer({ min: 1, max: 60 }) }), weight: 1 },
);

/** One queue, and what died in it, waiting to be moved back. */
class Side {
  readonly engine: QueueEngine;
  readonly receipts: string[] = [];
  readonly dead: Message[] = [];

  constructor(settings: QueueSettings, readonly log: RecordLog | null, hot: number) {
    const cold = log === null ? {} : { pageIn: log.pageIn, hotReadyLimit: hot };
    this.engine = new QueueEngine('q', settings, { random: () => 0.5, ...cold });
  }

  /** Outcomes as the broker meets them: retries land, the dead are kept aside. */
  outcomes(): string[] {
    const seen: string[] = [];
    for (const outcome of this.engine.takeOutcomes()) {
      if (outcome.kind === 'retry') this.engine.landed(outcome.message.seq);
      else this.dead.push(outcome.message);
      seen.push(`${outcome.kind === 'retry' ? 'retry' : outcome.reason}:${outcome.message.id}`);
    }
    return seen;
  }

  /** Moves the `count` first dead back in, as a redrive does. */
  moveBack(count: number, now: number): void {
    for (const message of this.dead.splice(0, count)) {
      const moved: Message = {
        ...message, headers: { ...message.headers, back: 'yes' }, failures: 0,
        availableAt: now, state: 'ready', lease: null,
      };
      this.engine.enqueue(moved, now);
      // The `published` copy lands after the move, as the broker logs it.
      this.log?.write(moved);
      this.engine.landed(moved.seq, moved.headers);
    }
  }

  listed(): Message[] {
    return this.engine.list(0, 10_000);
  }
}

/** Where a listed message belongs: waiting in delivery order, then in flight by seq. */
function rank(message: Message): number[] {
  if (message.state === 'ready') return [0, -message.priority, 0, message.seq];
  if (message.state === 'delayed') return [1, 0, message.availableAt, message.seq];
  return [2, 0, 0, message.seq];
}

function compareRanks(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

const view = (messages: Message[]) =>
  messages.map((m) => `${m.id}/${m.state}/${m.priority}/${m.availableAt}`);

const seen = { coldSteps: 0, displaced: 0, displacedMovedBack: 0, movedBack: 0 };

function run(settings: QueueSettings, steps: Step[], hot: number): void {
  const log = new RecordLog();
  const cold = new Side(settings, log, hot);
  const memory = new Side(settings, null, 0);
  const maxLength = settings.maxLength as number;
  let now = 1_000;

  const agree = <T>(what: string, act: (side: Side) => T): T => {
    const result = act(cold);
    assert.deepEqual(result, act(memory), what);
    return result;
  };

  // What drop-oldest must displace when `arrived` joins: the lowest seqs
  // of all waiting, as many as the queue is then over its limit.
  const expectDisplaced = (arrived: Message[], where: string, movedBack = false) => {
    const waiting = memory.listed().filter((m) => m.state !== 'in-flight');
    const over = waiting.length + arrived.length - maxLength;
    const expected = [...waiting, ...arrived]
      .sort((a, b) => a.seq - b.seq)
      .slice(0, Math.max(0, over))
      .map((m) => `overflow:${m.id}`);
    return (outcomes: string[]) => {
      assert.deepEqual([...outcomes].sort(), [...expected].sort(), `${where}: displaced`);
      seen.displaced += outcomes.length;
      if (movedBack) seen.displacedMovedBack += outcomes.length;
    };
  };

  steps.forEach((s, at) => {
    const where = `step ${at}: ${JSON.stringify(s)}`;
    if ('publish' in s) {
      for (const { priority, delay } of s.publish) {
        const seq = log.next();
        const message: Message = {
          seq, id: `m${seq}`, priority, group: null, headers: {},
          body: Buffer.from(`body ${seq}`), publishedAt: now, availableAt: now + delay,
          expiresAt: null, failures: 0, state: 'ready', lease: null,
        };
        const check = expectDisplaced([message], where);
        log.write(message);
        cold.engine.enqueue({ ...message }, now, true);
        memory.engine.enqueue({ ...message }, now, true);
        check(agree(`${where}: outcomes`, (side) => side.outcomes()));
      }
    } else if ('receive' in s) {
      agree(where, (side) => side.engine.receive(now, s.receive, 30).map((d) => {
        side.receipts.push(`${d.receipt} ${d.message.id}`);
        return [d.message.id, d.attempt];
      }));
    } else if ('settle' in s) {
      agree(where, (side) => {
        if (side.receipts.length === 0) return [];
        const [receipt] = side.receipts.splice(s.which % side.receipts.length, 1)[0].split(' ');
        if (s.settle === 'ack') side.engine.ack(receipt);
        else if (s.settle === 'release') side.engine.release(receipt, now);
        else {
          side.engine.nack(receipt, now, {
            requeue: s.settle !== 'reject', delayMs: s.settle === 'nack-delay' ? 17 : undefined,
          });
        }
        return side.outcomes();
      });
    } else if ('moveBack' in s) {
      for (let i = 0; i < s.moveBack && memory.dead.length > 0; i++) {
        const check = expectDisplaced([memory.dead[0]], where, true);
        seen.movedBack++;
        cold.moveBack(1, now);
        memory.moveBack(1, now);
        check(agree(`${where}: outcomes`, (side) => side.outcomes()));
      }
    } else {
      now += s.advance;
      agree(where, (side) => {
        side.engine.tick(now);
        return side.outcomes();
      });
    }

    if (cold.engine.coldCount > 0) seen.coldSteps++;
    assert.deepEqual(cold.engine.counts, memory.engine.counts, `${where}: counts`);
    const listed = agree(`${where}: listing`, (side) => view(side.listed()));
    const messages = memory.listed();
    const sorted = [...messages].sort((a, b) => compareRanks(rank(a), rank(b)));
    assert.deepEqual(view(messages), view(sorted), `${where}: listed in delivery order`);
    assert.equal(messages.length, memory.engine.size, `${where}: every message listed`);
    agree(`${where}: a page`, (side) => view(side.engine.list(2, 3)));
    assert.deepEqual(view(cold.engine.list(2, 3)), listed.slice(2, 5), `${where}: a page`);
  });

  // Once every delay has ended, receives hand out what waits as listed.
  now += 1_000_000;
  for (const side of [cold, memory]) {
    side.engine.tick(now);
    side.outcomes();
    const waiting = side.listed().filter((m) => m.state !== 'in-flight').map((m) => m.id);
    const drained = side.engine.receive(now, 10_000, 1000).map((d) => d.message.id);
    assert.deepEqual(drained, waiting, 'drained as listed');
  }
}

describe('listing and drop-oldest in delivery order, with messages moved back in', () => {
  it('agree with the rules, in memory and with a cold tier', () => {
    Object.assign(seen, { coldSteps: 0, displaced: 0, displacedMovedBack: 0, movedBack: 0 });
    const settings: QueueSettings = {
      ...DEFAULT_SETTINGS,
      maxLength: 6,
      overflow: 'drop-oldest',
      maxAttempts: 3,
      backoff: { initialMs: 10, multiplier: 2, maxMs: 40, jitter: 0 },
    };
    fc.assert(
      fc.property(
        fc.array(step, { minLength: 20, maxLength: 120, size: 'max' }),
        fc.integer({ min: 1, max: 3 }),
        (steps, hot) => run(settings, steps, hot),
      ),
      { numRuns: 100 },
    );
    assert.ok(seen.coldSteps > 500 && seen.displaced > 200 && seen.displacedMovedBack > 50 &&
      seen.movedBack > 200, JSON.stringify(seen));
  });
});
