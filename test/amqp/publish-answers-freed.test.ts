// A publishing channel must not keep the broker's answers to its
// publishes once they are confirmed. It did: each batch's landing was
// Promise.all over the one before it, and Promise.all's value holds the
// earlier value, so every answer (an object and a 36-character id, about
// 100 B a message) stayed reachable for as long as the channel was open.
// At 5,000 msg/s that is 0.5 MB/s of old-space growth and more for each
// scavenge to promote.

import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, it } from 'node:test';

import { useAmqpFixture } from './amqp-fixture.js';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const fixture = useAmqpFixture('usher-publish-answers-');

const BATCHES = 50;

describe('answers to publishes on an open channel', () => {
  it('are let go of once confirmed', async () => {
    // Each batch's answers, watched without being kept.
    const answers: WeakRef<object>[] = [];
    const broker = fixture.broker;
    const publishEach = broker.publishEach.bind(broker);
    broker.publishEach = async (queue, inputs) => {
      const answered = await publishEach(queue, inputs);
      answers.push(new WeakRef(answered));
      return answered;
    };

    const connection = await fixture.connect();
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue('answers', { durable: true });
    // One batch at a time: each confirmed before the next is sent, so
    // each lands as a batch of its own.
    for (let i = 0; i < BATCHES; i++) {
      channel.sendToQueue('answers', Buffer.from(`message ${i}`), { persistent: true });
      await channel.waitForConfirms();
    }
    assert.equal(answers.length, BATCHES);

    // WeakRefs read in this job keep their targets until it ends.
    await new Promise((resolve) => setImmediate(resolve));
    collectGarbage();
    const kept = answers.filter((answer) => answer.deref() !== undefined).length;

    // The channel is still open: its last landing may be held, no more.
    assert.ok(kept <= 1, `${kept} of ${BATCHES} batches' answers still reachable`);
    await connection.close();
  });
});
