// A channel that holds a delivery unacked for the consumer timeout is
// closed with 406, in RabbitMQ's words, and its deliveries go back. The
// broker's lease used to be the timeout: it redelivered the message while
// the holder's channel stayed open, and the holder's late ack was
// swallowed, so the message was processed twice (breaker session).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import amqp from 'amqplib';

import type { Broker } from '../../src/broker/broker.js';
import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';

const TIMEOUT_MS = 300;

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let server: AmqpServer;
let url: string;

before(async () => {
  dir = tempDir('usher-consumer-timeout-');
  broker = await openBroker(dir.path);
  server = await createAmqpServer({
    broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 1024 * 1024,
    consumerTimeoutMs: TIMEOUT_MS,
  });
  url = `amqp://guest:guest@127.0.0.1:${(await server.listen(0, '127.0.0.1')).port}`;
});

after(async () => {
  await server.close();
  await broker.close();
  dir.remove();
});

test('a delivery held past the consumer timeout closes its channel with 406; it goes back once',
  { timeout: 10_000 }, async () => {
  const connection = await amqp.connect(url);
  connection.on('error', () => {});
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
  const connection = await amqp.connect(url);
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
