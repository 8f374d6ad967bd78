// consume() against a real `usher serve`: concurrency, ack on success,
// nack on throw (counted in attempts), manual settling, graceful stop.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  connect,
  type ConsumerMessage,
  type QueueStats,
  type UsherClient,
} from '../../src/client/index.js';
import { eventually, startUsher, type UsherServer } from './usher-process.js';

let server: UsherServer;
let usher: UsherClient;

before(async () => {
  server = await startUsher();
  usher = connect(server.url);
});

after(async () => {
  await usher?.close();
  await server?.stop();
});

/** Stats of `queue` once `expect` holds for them. */
function statsWhen(queue: string, expect: (stats: QueueStats) => boolean) {
  return eventually(async () => {
    const { stats } = await usher.getQueue(queue);
    assert.ok(expect(stats), JSON.stringify(stats));
    return stats;
  });
}

describe('consume', () => {
  it('runs up to `concurrency` handlers at once and acks each', async () => {
    await usher.createQueue('parallel');
    await usher.publishBatch(
      'parallel',
      Array.from({ length: 9 }, (_, i) => ({ body: { n: i } })),
    );

    let running = 0;
    let most = 0;
    const seen: number[] = [];
    const consumer = usher.consume(
      'parallel',
      async (message) => {
        running += 1;
        most = Math.max(most, running);
        await sleep(60);
        seen.push((message.body as { n: number }).n);
        running -= 1;
      },
      { concurrency: 3, waitMs: 200 },
    );

    const stats = await statsWhen('parallel', (s) => s.acked === 9);
    await consumer.stop();
    assert.equal(most, 3);
    assert.deepEqual([...seen].sort(), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(stats.total, 0);
    assert.equal(stats.nacked, 0);
  });

  it('nacks with the error message when the handler throws', async () => {
    await usher.createQueue('flaky', {
      maxAttempts: 5,
      backoff: { initialMs: 50, maxMs: 50, jitter: 0 },
    });
    await usher.publish('flaky', 'job', { id: 'job-1' });

    const attempts: number[] = [];
    const consumer = usher.consume(
      'flaky',
      (message) => {
        attempts.push(message.attempt);
        if (message.attempt === 1) throw new Error('first try fails');
      },
      { waitMs: 200 },
    );

    const stats = await statsWhen('flaky', (s) => s.acked === 1);
    await consumer.stop();
    assert.deepEqual(attempts, [1, 2]);
    assert.equal(stats.nacked, 1);
    assert.equal(stats.total, 0);
  });

  it('tells onError of a throwing handler, with the message it nacked', async () => {
    await usher.createQueue('thrown', { maxAttempts: 1 });
    await usher.publish('thrown', 'job', { id: 'thrown-1' });

    const failure = new Error('payment provider down');
    const reported: { error: unknown; message?: ConsumerMessage }[] = [];
    const consumer = usher.consume(
      'thrown',
      () => {
        throw failure;
      },
      {
        waitMs: 200,
        onError: (error: unknown, message?: ConsumerMessage) =>
          reported.push({ error, message }),
      },
    );

    const stats = await statsWhen('thrown', (s) => s.nacked === 1);
    await consumer.stop();
    assert.equal(reported.length, 1);
    assert.equal(reported[0].error, failure);
    assert.equal(reported[0].message?.id, 'thrown-1');
    assert.equal(reported[0].message?.failed, true);
    assert.equal(stats.acked, 0);
  });

  it('dead-letters after maxAttempts with the reason kept', async () => {
    await usher.createQueue('doomed', {
      maxAttempts: 2,
      backoff: { initialMs: 20, maxMs: 20, jitter: 0 },
      deadLetter: 'doomed.dlq',
    });
    await usher.publish('doomed', { order: 1 });

    const attempts: number[] = [];
    const consumer = usher.consume(
      'doomed',
      (message) => {
        attempts.push(message.attempt);
        throw new Error('card declined');
      },
      { waitMs: 200 },
    );

    await statsWhen('doomed.dlq', (s) => s.ready === 1);
    await consumer.stop();
    assert.deepEqual(attempts, [1, 2]);
    const [dead] = await usher.peek('doomed.dlq');
    assert.deepEqual(dead.body, { order: 1 });
    assert.equal(dead.headers['x-usher-death-reason'], 'max-attempts');
    const deaths = JSON.parse(dead.headers['x-usher-deaths']);
    assert.equal(deaths.at(-1).error, 'card declined');
  });

  it('lets the handler nack or extend; no auto-ack after a nack', async () => {
    await usher.createQueue('manual', { deadLetter: 'manual.dlq' });
    await usher.publishBatch('manual', [{ body: 'keep' }, { body: 'reject' }]);

    const deadlines: number[] = [];
    const consumer = usher.consume(
      'manual',
      async (message: ConsumerMessage) => {
        if (message.body === 'reject') {
          await message.nack({ requeue: false, reason: 'rejected by test' });
          return;
        }
        deadlines.push(await message.extend(120_000));
      },
      { concurrency: 2, waitMs: 200 },
    );

    await statsWhen('manual', (s) => s.acked === 1 && s.total === 0);
    await statsWhen('manual.dlq', (s) => s.ready === 1);
    await consumer.stop();
    assert.equal(deadlines.length, 1);
    assert.ok(deadlines[0] > Date.now() + 100_000);
    const [dead] = await usher.peek('manual.dlq');
    assert.equal(dead.body, 'reject');
  });

  it('stop() waits for running handlers and their acks', async () => {
    await usher.createQueue('graceful');
    await usher.publish('graceful', 'slow');

    let started!: () => void;
    const handlerStarted = new Promise<void>((resolve) => (started = resolve));
    let finished = false;
    const consumer = usher.consume(
      'graceful',
      async () => {
        started();
        await sleep(300);
        finished = true;
      },
      { waitMs: 20_000 },
    );

    await handlerStarted;
    await consumer.stop();
    assert.equal(finished, true);
    const { stats } = await usher.getQueue('graceful');
    assert.equal(stats.acked, 1);
    assert.equal(stats.inFlight, 0);

    // Stopped means stopped: nothing more is received.
    await usher.publish('graceful', 'after stop');
    await sleep(200);
    assert.equal((await usher.getQueue('graceful')).stats.ready, 1);
  });

  it('stop() ends an idle long poll at once', async () => {
    await usher.createQueue('quiet');
    const consumer = usher.consume('quiet', () => {}, { waitMs: 20_000 });
    await sleep(100);

    const began = Date.now();
    await consumer.stop();
    assert.ok(Date.now() - began < 1000, `stop took ${Date.now() - began}ms`);

    // The given-up poll must not take the next message with it.
    await usher.publish('quiet', 'for someone else');
    await sleep(100);
    const { stats } = await usher.getQueue('quiet');
    assert.equal(stats.ready, 1);
    assert.equal(stats.inFlight, 0);
  });

  it('reports receive failures to onError and keeps trying', async () => {
    const errors: unknown[] = [];
    const consumer = usher.consume('not-yet', () => {}, {
      waitMs: 100,
      onError: (err) => errors.push(err),
    });

    await eventually(() => assert.ok(errors.length >= 1));
    assert.equal((errors[0] as { code?: string }).code, 'QUEUE_NOT_FOUND');
    await usher.createQueue('not-yet');
    await usher.publish('not-yet', 'finally');
    await statsWhen('not-yet', (s) => s.acked === 1);
    await consumer.stop();
  });
});

describe('consume on a FIFO queue', () => {
  it('runs a group in order, never side by side, and holds it behind a failure', async () => {
    await usher.createQueue('ordered', { fifo: true, backoff: { initialMs: 50, jitter: 0 } });
    await usher.publishBatch('ordered', [
      ...['A1', 'A2', 'A3', 'A4'].map((body) => ({ body, group: 'A' })),
      ...['B1', 'B2'].map((body) => ({ body, group: 'B' })),
    ]);

    const running = new Set<string>();
    const done: string[] = [];
    let overlaps = 0;
    let failedOnce = false;
    const consumer = usher.consume('ordered', async (message) => {
      const group = message.group as string;
      if (running.has(group)) overlaps += 1;
      running.add(group);
      try {
        await sleep(message.body === 'A1' ? 150 : 10);
        if (message.body === 'A2' && !failedOnce) {
          failedOnce = true;
          throw new Error('A2 fails once');
        }
        done.push(message.body as string);
      } finally {
        running.delete(group);
      }
    }, { concurrency: 8, waitMs: 200 });

    await statsWhen('ordered', (s) => s.acked === 6 && s.total === 0);
    await consumer.stop();

    assert.equal(overlaps, 0, 'two messages of one group ran at once');
    assert.deepEqual(done.filter((b) => b.startsWith('A')), ['A1', 'A2', 'A3', 'A4']);
    assert.deepEqual(done.filter((b) => b.startsWith('B')), ['B1', 'B2']);
    const { stats } = await usher.getQueue('ordered');
    assert.equal(stats.nacked, 1, 'only A2 counts a failure; A3 and A4 were released');
  });
});
