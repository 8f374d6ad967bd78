// The consumer-scaling hint's arithmetic over synthetic samples.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { consumersNeeded } from '../../src/observe/scaling.js';
import { histogram, queueSample, sampleAt } from './samples.js';

describe('consumersNeeded', () => {
  it('covers arrivals plus draining the backlog within the target', () => {
    // 100 messages/s arrive; each takes 0.2 s to process (0.25 s from
    // publish to ack, of which 0.05 s waiting); 6000 wait.
    const before = sampleAt(0, { queues: { q: queueSample({ published: 0 }) } });
    const now = sampleAt(60, {
      queues: {
        q: queueSample({
          published: 6000,
          ready: 6000,
          publishToAck: histogram([0.25, 0.25]),
          timeInQueue: histogram([0.05, 0.05]),
        }),
      },
    });

    const needed = consumersNeeded([before, now], 60);

    // (100/s + 6000/60 s) * 0.2 s = 40
    assert.equal(needed.get('q'), 40);
  });

  it('asks for none on an idle queue and gives no hint before any ack', () => {
    const idle = queueSample({
      publishToAck: histogram([0.1]),
      timeInQueue: histogram([0.01]),
    });
    const samples = [
      sampleAt(0, { queues: { idle, fresh: queueSample({ ready: 5 }) } }),
      sampleAt(5, { queues: { idle, fresh: queueSample({ ready: 5 }) } }),
    ];

    const needed = consumersNeeded(samples, 60);

    assert.equal(needed.get('idle'), 0);
    assert.equal(needed.has('fresh'), false);
  });
});
