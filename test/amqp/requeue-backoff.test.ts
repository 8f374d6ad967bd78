// A basic.nack with requeue waits the queue's backoff, Usher's own
// feature through x-usher-backoff-* (issue #4); a queue declared over AMQP
// without it has none, so a nack is ready again at once, as in RabbitMQ.
// basic.reject with requeue is always at once: it hands a message back
// rather than failing it (the TypeScript client's release). The backoff
// arguments used to be taken and then never applied: every requeue was at
// once (new-user session).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Channel, ConsumeMessage } from 'amqplib';

import { useAmqpFixture } from './amqp-fixture.js';

const fixture = useAmqpFixture('usher-requeue-backoff-');

/** Publishes one message to `queue` and times its deliveries, settling each with `settle`. */
async function deliveryGaps(
  queue: string,
  args: Record<string, unknown>,
  settle: (channel: Channel, message: ConsumeMessage) => void,
  deliveries: number,
): Promise<number[]> {
  const connection = await fixture.connect();
  const channel = await connection.createConfirmChannel();
  await channel.assertQueue(queue, { arguments: args });
  channel.sendToQueue(queue, Buffer.from('ticket'), { persistent: true });
  await channel.waitForConfirms();

  const times: number[] = [];
  await new Promise<void>((resolve) => {
    void channel.consume(queue, (message) => {
      if (message === null) return;
      times.push(performance.now());
      if (times.length === deliveries) {
        channel.ack(message);
        resolve();
      } else {
        settle(channel, message);
      }
    });
  });
  await connection.close();
  return times.slice(1).map((time, i) => time - times[i]);
}

test('a requeued nack waits x-usher-backoff-initial, doubling', { timeout: 10_000 }, async () => {
  const gaps = await deliveryGaps('backoff-nack', {
    'x-usher-backoff-initial': 200, 'x-usher-backoff-multiplier': 2, 'x-usher-backoff-jitter': 0,
  }, (channel, message) => channel.nack(message, false, true), 3);
  assert.ok(gaps[0] >= 180, `first retry after ${gaps[0]} ms, not at once`);
  assert.ok(gaps[1] >= 370, `second retry after ${gaps[1]} ms: the backoff doubles`);
});

test('without x-usher-backoff-* a requeued nack is ready at once, as in RabbitMQ',
  { timeout: 10_000 }, async () => {
  const gaps = await deliveryGaps('backoff-none', {},
    (channel, message) => channel.nack(message, false, true), 3);
  assert.ok(Math.max(...gaps) < 150, `retries after ${gaps.join(', ')} ms`);
});

test('a requeued reject is ready at once even with a backoff', { timeout: 10_000 }, async () => {
  const gaps = await deliveryGaps('backoff-reject', { 'x-usher-backoff-initial': 2_000 },
    (channel, message) => channel.reject(message, true), 2);
  assert.ok(gaps[0] < 1_000, `handed back, ready after ${gaps[0]} ms`);
});
