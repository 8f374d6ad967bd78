// The dashboard feed's chart points and the sampler's history.

import assert from 'node:assert/strict';
import { get, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';

import { chartPoint } from '../../src/observe/feed.js';
import { call, startHttp, type Harness } from '../http/harness.js';
import { observationsOf } from '../../src/observe/observations.js';
import { ManualClock } from '../helpers.js';
import { histogram, queueSample, sampleAt } from './samples.js';

describe('chartPoint', () => {
  it('gives rates and p95 latency over the interval, all queues together', () => {
    const before = sampleAt(0, {
      queues: { a: queueSample({ published: 10, acked: 5, publishToAck: histogram([0.01]) }) },
    });
    const now = sampleAt(2, {
      queues: {
        a: queueSample({ published: 30, acked: 9, publishToAck: histogram([0.01, 0.2, 0.2]) }),
        b: queueSample({ published: 4, delivered: 6 }),
      },
    });

    const point = chartPoint(before, now);

    assert.equal(point.t, now.at / 1000);
    assert.equal(point.publishRate, (20 + 4) / 2);
    assert.equal(point.ackRate, 2);
    assert.equal(point.deliverRate, 3);
    // Both acks of the interval took 0.2 s: p95 lies in the (0.1, 0.25] bucket.
    assert.ok(point.p95PublishToAckMs! > 100 && point.p95PublishToAckMs! <= 250);
    assert.equal(point.p95TimeInQueueMs, null);
  });
});

describe('Sampler', () => {
  it('shares unchanged latency histograms between samples', async () => {
    const h = await startHttp();
    try {
      const sampler = observationsOf(h.broker).sampler!;
      await call(h.app, 'PUT', '/queues/q');
      await call(h.app, 'POST', '/queues/q/messages', { body: 'x' });
      const first = sampler.sampleNow();
      const same = sampler.sampleNow();
      await call(h.app, 'POST', '/queues/q/receive', {});
      const changed = sampler.sampleNow();

      assert.equal(same.queues.q.timeInQueue, first.queues.q.timeInQueue);
      assert.notEqual(changed.queues.q.timeInQueue, same.queues.q.timeInQueue);
      assert.equal(changed.queues.q.timeInQueue.count, 1);
      assert.equal(changed.queues.q.published, 1);
    } finally {
      await h.close();
    }
  });
});

describe('broker-wide rates', () => {
  it('count the traffic of a queue deleted before the next sample (GET /events)', async () => {
    const clock = new ManualClock();
    const h = await startHttp({ observe: { clock: clock.read, sampleIntervalMs: 60_000 } });
    const events = await openEvents(h);
    try {
      const sampler = observationsOf(h.broker).sampler!;
      await call(h.app, 'PUT', '/queues/gone');
      const messages = Array.from({ length: 200 }, (_, i) => ({ body: i }));
      await call(h.app, 'POST', '/queues/gone/messages/batch', { messages });
      const received = await call(h.app, 'POST', '/queues/gone/receive', { max: 100 });
      const receipts = received.body.messages.map((m: { receipt: string }) => m.receipt);
      await call(h.app, 'POST', '/queues/gone/ack', { receipts });
      await call(h.app, 'DELETE', '/queues/gone');

      clock.advance(5_000);
      sampler.sampleNow();
      const { point } = await events.next('update');

      assert.equal(point.publishRate, 200 / 5);
      assert.equal(point.deliverRate, 100 / 5);
      assert.equal(point.ackRate, 100 / 5);
      assert.notEqual(point.p95PublishToAckMs, null);
      assert.notEqual(point.p95TimeInQueueMs, null);
    } finally {
      events.close();
      await h.close();
    }
  });

  it('count both lives of a queue deleted and declared again between samples', async () => {
    const clock = new ManualClock();
    const h = await startHttp({ observe: { clock: clock.read, sampleIntervalMs: 60_000 } });
    try {
      const sampler = observationsOf(h.broker).sampler!;
      const publish = (count: number) => call(h.app, 'POST', '/queues/q/messages/batch', {
        messages: Array.from({ length: count }, (_, i) => ({ body: i })),
      });
      await call(h.app, 'PUT', '/queues/q');
      await publish(200);
      const before = sampler.sampleNow();

      await publish(50);
      await call(h.app, 'DELETE', '/queues/q');
      await call(h.app, 'PUT', '/queues/q');
      await publish(10);
      clock.advance(5_000);
      const now = sampler.sampleNow();

      assert.equal(chartPoint(before, now).publishRate, (50 + 10) / 5);
    } finally {
      await h.close();
    }
  });
});

interface EventReader {
  /** The data of the next event named `name`, skipping others. */
  next(name: string): Promise<any>;
  close(): void;
}

async function openEvents(h: Harness): Promise<EventReader> {
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = h.app.server.address() as AddressInfo;
  const response = await new Promise<IncomingMessage>((resolve, reject) =>
    get(`http://127.0.0.1:${port}/events`, resolve).once('error', reject),
  );
  response.setEncoding('utf8');
  const chunks = response[Symbol.asyncIterator]();
  let buffered = '';

  return {
    async next(name) {
      for (;;) {
        const end = buffered.indexOf('\n\n');
        if (end >= 0) {
          const [event, data] = buffered.slice(0, end).split('\n');
          buffered = buffered.slice(end + 2);
          if (event === `event: ${name}`) return JSON.parse(data.slice('data: '.length));
          continue;
        }
        const chunk = await chunks.next();
        if (chunk.done === true) throw new Error(`/events ended before a "${name}" event`);
        buffered += chunk.value as string;
      }
    },
    close: () => response.destroy(),
  };
}
