// A channel that holds a delivery unacked for the consumer timeout is
// closed with 406, in RabbitMQ's words, and its deliveries go back. The
// broker's lease used to be the timeout: it redelivered the message while
// the holder's channel stayed open, and the holder's late ack was
// swallowed, so the message was processed twice (breaker session).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import type amqp from 'amqplib';

import { useAmqpFixture } from './amqp-fixture.js';

const TIMEOUT_MS = 300;

const fixture = useAmqpFixture('usher-consumer-timeout-', {}, { consumerTimeoutMs: TIMEOUT_MS });

test('a delivery held past the consumer timeout closes its channel with 406; it goes back once',
  { timeout: 10_000 }, async () => {
  const connection = await fixture.connect();
  const slow = await connection.createChannel();
  await slow.assertQueue('timeout');
  slow.sendToQueue('timeout', Buffer.from('ticket'));
  const closed = new Promise<Error>((resolve) => slow.once('error', resolve));

  const held = new Promise<amqp.ConsumeMessage>((resolve) => {
    void slow.consume('timeout', (message) => {
      if (message !== null) resolve(message);
    });
  });
  const first = await held;
  const error = await closed;
  assert.match(error.message, /PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out\. Timeout value used: 300 ms/);

  // Back once, redelivered, to another consumer.
  const other = await connection.createChannel();
  const again = await other.get('timeout');
  assert.ok(again !== false);
  assert.equal(again.content.toString(), first.content.toString());
  assert.equal(again.fields.redelivered, true);
  other.ack(again);
  assert.equal(await other.get('timeout'), false);
  await connection.close();
});

test('a channel that acks in time is left open', { timeout: 10_000 }, async () => {
  const connection = await fixture.connect();
  const channel = await connection.createChannel();
  let failed = false;
  channel.on('error', () => {
    failed = true;
  });
  await channel.assertQueue('in-time');
  for (let i = 0; i < 5; i++) {
    channel.sendToQueue('in-time', Buffer.from(`ticket ${i}`));
    const message = await new Promise<amqp.GetMessage>((resolve) => {
      const poll = async () => {
        const got = await channel.get('in-time');
        if (got === false) setTimeout(() => void poll(), 10);
        else resolve(got);
      };
      void poll();
    });
    await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS / 2));
    channel.ack(message);
  }
  await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS * 2));
  assert.equal(failed, false);
  await connection.close();
});
