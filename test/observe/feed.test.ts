// The dashboard feed's chart points and the sampler's history.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { chartPoint } from '../../src/observe/feed.js';
import { call, startHttp } from '../http/harness.js';
import { observationsOf } from '../../src/observe/observations.js';
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
