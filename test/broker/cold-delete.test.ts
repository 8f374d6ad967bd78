// A queue deleted or purged while it holds cold delayed, retried and FIFO
// messages (rows past a hot window of 3) leaves nothing behind: not in a
// queue made again under its name, not after a restart, not when the
// delays come due.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { brokerPerTest, text } from '../helpers.js';

const usher = brokerPerTest({ hotReadyLimit: 3, hotMemoryBytes: 0 });

async function fill(queue: string, fifo: boolean): Promise<void> {
  await usher.broker.createQueue(queue, { fifo, maxAttempts: 0 });
  for (let i = 0; i < 10; i++) {
    await usher.broker.publish(queue, [{ body: text(`p${i}`), group: fifo ? `g${i % 2}` : undefined }]);
    await usher.broker.publish(queue, [{ body: text(`d${i}`), delayMs: 5000 + i, group: fifo ? 'g9' : undefined }]);
  }
  const got = await usher.broker.receive(queue, { max: 4, waitMs: 0 });
  for (const m of got) await usher.broker.nack(queue, m.receipt, { requeue: true, delayMs: 3000 });
}

async function count(queue: string): Promise<number> {
  usher.clock.advance(60_000);
  usher.broker.runDue();
  let n = 0;
  for (;;) {
    const batch = await usher.broker.receive(queue, { max: 50, waitMs: 0 });
    if (batch.length === 0) return n;
    n += batch.length;
    await usher.broker.ack(queue, batch.map((m) => m.receipt));
  }
}

describe('deleting or purging a queue with cold rows', () => {
  for (const fifo of [false, true]) {
    it(`delete, make again, restart (${fifo ? 'FIFO' : 'best-effort'})`, async () => {
      await fill('q', fifo);
      await usher.broker.deleteQueue('q');
      await usher.broker.createQueue('q', { fifo });
      assert.equal(usher.broker.getQueue('q').stats.ready + usher.broker.getQueue('q').stats.delayed, 0);
      await usher.reopen();
      assert.equal(await count('q'), 0);
    });

    it(`purge, restart, delays come due (${fifo ? 'FIFO' : 'best-effort'})`, async () => {
      await fill('q', fifo);
      await usher.broker.purgeQueue('q');
      await usher.broker.publish('q', [{ body: text('after'), group: fifo ? 'g0' : undefined }]);
      await usher.reopen();
      assert.equal(await count('q'), 1);
    });
  }
});
