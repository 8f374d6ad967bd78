// A queue deleted or purged while it holds cold delayed, retried and FIFO
// messages (rows past a hot window of 3) leaves nothing behind: not in a
// queue made again under its name, not after a restart, not when the
// delays come due.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import { ManualClock, openBroker, tempDir, text } from '../helpers.js';

let dir: ReturnType<typeof tempDir>;
let clock: ManualClock;
let broker: Broker;

const options = () => ({ clock: clock.read, random: () => 0, hotReadyLimit: 3 });

beforeEach(async () => {
  dir = tempDir();
  clock = new ManualClock();
  broker = await openBroker(dir.path, options());
});

afterEach(async () => {
  await broker.close();
  dir.remove();
});

async function fill(queue: string, fifo: boolean): Promise<void> {
  await broker.createQueue(queue, { fifo, maxAttempts: 0 });
  for (let i = 0; i < 10; i++) {
    await broker.publish(queue, [{ body: text(`p${i}`), group: fifo ? `g${i % 2}` : undefined }]);
    await broker.publish(queue, [{ body: text(`d${i}`), delayMs: 5000 + i, group: fifo ? 'g9' : undefined }]);
  }
  const got = await broker.receive(queue, { max: 4, waitMs: 0 });
  for (const m of got) await broker.nack(queue, m.receipt, { requeue: true, delayMs: 3000 });
}

async function count(queue: string): Promise<number> {
  clock.advance(60_000);
  broker.runDue();
  let n = 0;
  for (;;) {
    const batch = await broker.receive(queue, { max: 50, waitMs: 0 });
    if (batch.length === 0) return n;
    n += batch.length;
    await broker.ack(queue, batch.map((m) => m.receipt));
  }
}

describe('deleting or purging a queue with cold rows', () => {
  for (const fifo of [false, true]) {
    it(`delete, make again, restart (${fifo ? 'FIFO' : 'best-effort'})`, async () => {
      await fill('q', fifo);
      await broker.deleteQueue('q');
      await broker.createQueue('q', { fifo });
      assert.equal(broker.getQueue('q').stats.ready + broker.getQueue('q').stats.delayed, 0);
      await broker.close();
      broker = await openBroker(dir.path, options());
      assert.equal(await count('q'), 0);
    });

    it(`purge, restart, delays come due (${fifo ? 'FIFO' : 'best-effort'})`, async () => {
      await fill('q', fifo);
      await broker.purgeQueue('q');
      await broker.publish('q', [{ body: text('after'), group: fifo ? 'g0' : undefined }]);
      await broker.close();
      broker = await openBroker(dir.path, options());
      assert.equal(await count('q'), 1);
    });
  }
});
