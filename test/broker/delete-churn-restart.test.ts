// Queues deleted and made again under the same names while messages move
// between them (dead letters of nacks, expiries and overflows, redrives,
// an adapter's dead-letter routing with a copy), a few acts at a time and
// not waited for one by one, so that deletes land beside the moves. Now
// and then, once every act has answered, what the broker holds is
// compared with what comes back: from a crash image (the last checkpoint
// and the log after it), a full replay, and a clean restart. Checkpoints
// and segments are small, so checkpoints are written while acts land and
// compaction copies messages forward.

import assert from 'node:assert/strict';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import type { Broker, BrokerOptions } from '../../src/broker/broker.js';
import type { DeadLetterRouter } from '../../src/broker/dead-letter.js';
import type { QueueSettingsInput } from '../../src/broker/types.js';
import { ManualClock, openBroker, seededRandom, tempDir, text } from '../helpers.js';

const NAMES = ['a', 'b', 'dl', 'r'];

// What each name may be made with: `fifo` and `durability` stay the same,
// the rest changes between makings.
const SETTINGS: Record<string, QueueSettingsInput[]> = {
  a: [
    { deadLetter: 'dl', maxLength: 4, overflow: 'drop-oldest' },
    { deadLetter: 'dl', messageTtlMs: 1000 },
  ],
  b: [{ deadLetter: 'dl', maxAttempts: 2 }, { deadLetter: 'a' }],
  dl: [{}, { deadLetter: 'b', messageTtlMs: 3000 }],
  r: [{}],
};

/** An adapter's dead-letter exchange: "r" sends its dead to "b" and a copy to "dl". */
const router: DeadLetterRouter = {
  route: (queue, _reason, headers) =>
    (queue === 'r' ? { queues: ['b', 'dl'], headers } : undefined),
  sourcesOf: (queue) => (queue === 'b' || queue === 'dl' ? ['r'] : []),
  decidesFor: (queue) => queue === 'r',
};

/** Every message each queue holds, as `queue:body`, sorted: what a restart must bring back. */
function holdings(broker: Broker): string[] {
  const held: string[] = [];
  for (const name of NAMES) {
    if (!broker.hasQueue(name)) continue;
    for (const message of broker.peek(name, { offset: 0, limit: 1000 })) {
      held.push(`${name}:${String(message.body)}`);
    }
  }
  return held.sort();
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class Run {
  broker!: Broker;
  readonly dir = tempDir();
  readonly images: ReturnType<typeof tempDir>[] = [];
  readonly clock = new ManualClock();
  readonly receipts = new Map<string, string[]>();
  published = 0;

  constructor(readonly next: () => number) {}

  options(extra: Partial<BrokerOptions> = {}): Partial<BrokerOptions> {
    return {
      clock: this.clock.read,
      random: () => 0.5,
      sync: true,
      segmentBytes: 8 * 1024,
      checkpoints: { minBytes: 4 * 1024, ratio: 1, liveShare: 0 },
      ...extra,
    };
  }

  async open(extra: Partial<BrokerOptions> = {}): Promise<void> {
    this.broker = await openBroker(this.dir.path, this.options(extra));
    this.broker.routeDeadLetters(router);
    this.receipts.clear();
  }

  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.next() * list.length)];
  }

  /** One act, drawn at random; its failure (a queue gone, a receipt stale) is an answer too. */
  readonly trace: string[] = [];

  act(): Promise<unknown> {
    const broker = this.broker;
    const name = this.pick(NAMES);
    const roll = this.next();
    const at = this.trace.length;
    this.trace.push(`${name} ${roll.toFixed(2)}`);
    const attempt = async (work: () => Promise<unknown>) => {
      try {
        const answer = await work();
        this.trace[at] += ` -> ${JSON.stringify(answer)}`;
        return answer;
      } catch (err) {
        this.trace[at] += ` -> ${(err as { code?: string }).code}`;
        return (err as { code?: string }).code ?? err;
      }
    };
    if (roll < 0.12) return attempt(() => broker.createQueue(name, this.pick(SETTINGS[name])));
    if (roll < 0.22) return attempt(() => broker.deleteQueue(name));
    if (roll < 0.45) {
      const count = 1 + Math.floor(this.next() * 3);
      const inputs = Array.from({ length: count }, () => ({ body: text(`m${this.published++}`) }));
      return attempt(() => broker.publish(name, inputs));
    }
    if (roll < 0.57) {
      return attempt(async () => {
        const got = await broker.receive(name, { max: 3, waitMs: 0 });
        const list = this.receipts.get(name) ?? [];
        list.push(...got.map((m) => m.receipt));
        this.receipts.set(name, list);
      });
    }
    if (roll < 0.75) {
      const list = this.receipts.get(name) ?? [];
      const receipt = list.splice(Math.floor(this.next() * list.length), 1)[0];
      if (receipt === undefined) return Promise.resolve('none held');
      const how = this.next();
      if (how < 0.3) return attempt(() => broker.ack(name, [receipt]));
      return attempt(() => broker.nack(name, receipt, { requeue: how < 0.5 }));
    }
    if (roll < 0.85) {
      const to = this.next() < 0.5 ? undefined : this.pick(NAMES.filter((n) => n !== name));
      return attempt(() => broker.redrive(name, to === undefined ? {} : { to }));
    }
    if (roll < 0.9) return attempt(() => broker.purgeQueue(name));
    this.clock.advance(700);
    broker.runDue();
    return Promise.resolve('time');
  }

  /** Waits out what the acts left running: held dead letters, logged outcomes. */
  async quiet(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      await pause(5);
      this.broker.runDue();
    }
    await pause(20);
  }

  /** Copies the data folder as a crash now leaves it. */
  crashImage(): string {
    const image = tempDir();
    this.images.push(image);
    cpSync(this.dir.path, image.path, { recursive: true });
    rmSync(join(image.path, 'usher.lock'));
    return image.path;
  }

  async close(): Promise<void> {
    await this.broker.close();
    this.dir.remove();
    for (const image of this.images) image.remove();
  }
}

// Seeds 12 and 20 (found among 1-40) failed until a restart stopped
// trimming drop-oldest queues held over their limit as it put moved and
// delayed messages back (QueueContents.restoring): in seed 20 "a" (made
// on demand as b's dead-letter queue, then given maxLength 4 while a
// redrive moved 7 into it) held 7, and after a full replay 4, with 3 in
// "dl" as overflow dead letters written at the start.

describe('queues deleted and made again while messages move, then restarts', () => {
  const seeds = (process.env.DELETE_CHURN_SEEDS ?? '1,2,3,4,12,20').split(',').map(Number);
  for (const seed of seeds) {
    it(`seed ${seed}: every restart brings back what the broker held`, async () => {
      const run = new Run(seededRandom(seed));
      await run.open();
      const deadline = Date.now() + 20_000;
      let compared = 0;
      try {
        for (let round = 0; round < 200 && Date.now() < deadline; round++) {
          const acts = Array.from({ length: 1 + Math.floor(run.next() * 4) }, () => run.act());
          await Promise.all(acts);
          run.trace.push(`-- round ${round} ${JSON.stringify(holdings(run.broker))}`);
          if (round % 10 !== 9) continue;

          await run.quiet();
          const before = holdings(run.broker);
          const where = `seed ${seed} round ${round}`;
          const kind = ['crash', 'replay', 'clean'][Math.floor(round / 10) % 3];
          if (kind === 'crash') {
            // A crash now: the last checkpoint and the log after it.
            const image = await openBroker(run.crashImage(), run.options());
            try {
              assert.deepEqual(holdings(image), before, `crash image, ${where}`);
            } finally {
              await image.close();
            }
          } else {
            await run.broker.close();
            await run.open(kind === 'replay' ? { checkpoints: { enabled: false } } : {});
            assert.deepEqual(holdings(run.broker), before, `${kind}, ${where}`);
          }
          compared++;
        }
        assert.ok(compared >= 5, `${compared} restarts compared`);
      } catch (err) {
        // Each act and its answer, and what the queues held after each round.
        if (process.env.DELETE_CHURN_TRACE) console.error(run.trace.join('\n'));
        throw err;
      } finally {
        await run.close();
      }
    });
  }
});
