// A redriven message keeps the place of its first arrival (README,
// "Semantics in brief"): peek lists it where a receive delivers it, and
// drop-oldest displaces it as the oldest, not a message published after
// it that never failed. The same with every message in memory, with a
// window of one or two (the rest cold), and across a restart.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import type { BrokerOptions } from '../../src/broker/broker.js';
import type { PublishInput } from '../../src/broker/types.js';
import { ManualClock, openBroker, tempDir, text } from '../helpers.js';

const WINDOWS = [1_000_000, 1, 2];

/** A broker with a hot window of `hot`, restarted when a test says so. */
class Fixture {
  broker!: Broker;
  private readonly dir = tempDir();
  private readonly options: Partial<BrokerOptions>;

  constructor(hot: number) {
    this.options = { clock: new ManualClock().read, hotReadyLimit: hot, hotMemoryBytes: 0 };
  }

  async open(): Promise<this> {
    this.broker = await openBroker(this.dir.path, this.options);
    return this;
  }

  async restart(): Promise<void> {
    await this.broker.close();
    await this.open();
  }

  async close(): Promise<void> {
    await this.broker.close();
    this.dir.remove();
  }

  async publish(queue: string, id: string, more: Partial<PublishInput> = {}): Promise<void> {
    await this.broker.publish(queue, [{ id, body: text(id), ...more }]);
  }

  /** Receives the next message of `queue`, expecting `id`, and rejects it. */
  async reject(queue: string, id: string): Promise<void> {
    const [message] = await this.broker.receive(queue, { max: 1, waitMs: 0 });
    assert.equal(message?.id, id);
    await this.broker.nack(queue, message.receipt, { requeue: false });
  }

  listed(queue: string): string[] {
    return this.broker.peek(queue, { offset: 0, limit: 100 }).map((m) => m.id);
  }

  async delivered(queue: string): Promise<string[]> {
    const received = await this.broker.receive(queue, { max: 100, waitMs: 0 });
    return received.map((m) => m.id);
  }

  /** Waits for `queue` to hold `count` messages: deaths are logged before they land. */
  async holds(queue: string, count: number): Promise<void> {
    for (let tries = 0; tries < 100 && this.broker.getQueue(queue).stats.total !== count;
      tries++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(this.broker.getQueue(queue).stats.total, count, `${queue} holds ${count}`);
  }
}

async function withFixture(hot: number, run: (f: Fixture) => Promise<void>): Promise<void> {
  const fixture = await new Fixture(hot).open();
  try {
    await run(fixture);
  } finally {
    await fixture.close();
  }
}

describe('peek after a redrive lists in delivery order', () => {
  for (const hot of WINDOWS) {
    for (const restart of [false, true]) {
      const where = `window ${hot}${restart ? ', after a restart' : ''}`;

      it(`${where}: the redriven message first, where a receive delivers it`, () =>
        withFixture(hot, async (f) => {
          await f.broker.createQueue('po.dlq', {});
          await f.broker.createQueue('po', { deadLetter: 'po.dlq' });
          await f.publish('po', 'A');
          await f.publish('po', 'B');
          await f.reject('po', 'A');
          await f.publish('po', 'C');
          await f.holds('po.dlq', 1);
          await f.broker.redrive('po.dlq', {});
          if (restart) await f.restart();

          assert.deepEqual(f.listed('po'), ['A', 'B', 'C']);
          assert.deepEqual(await f.delivered('po'), ['A', 'B', 'C']);
        }));

      it(`${where}: by priority, then first arrival, then delayed, then in flight`, () =>
        withFixture(hot, async (f) => {
          await f.broker.createQueue('pp.dlq', {});
          await f.broker.createQueue('pp', { deadLetter: 'pp.dlq' });
          // Seqs in this order: A0 B5 C0 D5, then E5 F0 and the delayed G9.
          for (const [id, priority] of [['A', 0], ['B', 5], ['C', 0], ['D', 5]] as const) {
            await f.publish('pp', id, { priority });
          }
          await f.reject('pp', 'B');
          await f.publish('pp', 'E', { priority: 5 });
          await f.publish('pp', 'F', { priority: 0 });
          await f.publish('pp', 'G', { priority: 9, delayMs: 60_000 });
          await f.holds('pp.dlq', 1);
          await f.broker.redrive('pp.dlq', {});
          if (restart) await f.restart();

          const expected = ['B', 'D', 'E', 'A', 'C', 'F'];
          assert.deepEqual(f.listed('pp'), [...expected, 'G']);
          assert.deepEqual(f.broker.peek('pp', { offset: 2, limit: 3 }).map((m) => m.id),
            ['E', 'A', 'C'], 'a page from the middle');
          const [first] = await f.broker.receive('pp', { max: 1, waitMs: 0 });
          assert.equal(first.id, 'B');
          assert.deepEqual(f.listed('pp'), ['D', 'E', 'A', 'C', 'F', 'G', 'B'],
            'what a consumer holds comes after what waits');
          assert.deepEqual(await f.delivered('pp'), expected.slice(1));
        }));
    }
  }
});

describe('drop-oldest after a redrive displaces the oldest by first arrival', () => {
  const settings = { deadLetter: 'dro.dlq', maxLength: 2, overflow: 'drop-oldest' } as const;

  for (const hot of WINDOWS) {
    for (const restart of [false, true]) {
      const where = `window ${hot}${restart ? ', restarted before the redrive' : ''}`;

      it(`${where}: the redriven message goes, not one that never failed`, () =>
        withFixture(hot, async (f) => {
          await f.broker.createQueue('dro.dlq', {});
          await f.broker.createQueue('dro', settings);
          await f.publish('dro', 'A');
          await f.publish('dro', 'B');
          await f.reject('dro', 'A');
          await f.publish('dro', 'C');
          await f.holds('dro.dlq', 1);
          if (restart) await f.restart();
          await f.broker.redrive('dro.dlq', {});

          await f.holds('dro.dlq', 1);
          const [dead] = f.broker.peek('dro.dlq', { offset: 0, limit: 10 });
          assert.equal(dead.id, 'A');
          assert.equal(dead.headers['x-usher-death-reason'], 'overflow');
          assert.deepEqual(await f.delivered('dro'), ['B', 'C']);
        }));
    }

    it(`window ${hot}: a redriven message stays the oldest across a restart`, () =>
      withFixture(hot, async (f) => {
        await f.broker.createQueue('dro.dlq', {});
        await f.broker.createQueue('dro', { ...settings, maxLength: 3 });
        await f.publish('dro', 'A');
        await f.publish('dro', 'B');
        await f.reject('dro', 'A');
        await f.publish('dro', 'C');
        await f.holds('dro.dlq', 1);
        await f.broker.redrive('dro.dlq', {});
        await f.holds('dro', 3);
        await f.restart();
        await f.publish('dro', 'D');

        await f.holds('dro.dlq', 1);
        assert.deepEqual(f.listed('dro.dlq'), ['A']);
        assert.deepEqual(await f.delivered('dro'), ['B', 'C', 'D']);
      }));

    it(`window ${hot}: the oldest whatever its priority, as the README defines it`, () =>
      withFixture(hot, async (f) => {
        await f.broker.createQueue('dro.dlq', {});
        await f.broker.createQueue('dro', settings);
        await f.publish('dro', 'A', { priority: 9 });
        await f.publish('dro', 'B', { priority: 0 });
        await f.reject('dro', 'A');
        await f.publish('dro', 'C', { priority: 9 });
        await f.holds('dro.dlq', 1);
        await f.broker.redrive('dro.dlq', {});
        // A (seq 1) is the oldest; B (seq 2) the oldest of the rest.
        await f.publish('dro', 'D', { priority: 9 });

        await f.holds('dro.dlq', 2);
        assert.deepEqual(f.listed('dro.dlq'), ['A', 'B']);
        assert.deepEqual(await f.delivered('dro'), ['C', 'D']);
      }));
  }
});
