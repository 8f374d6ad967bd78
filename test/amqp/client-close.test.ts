// A client's connection.close: Usher answers close-ok and leaves the
// socket for the client to close, as RabbitMQ does. Closing it first, the
// client's reader could meet the end of the stream before its own close
// was done, and amqp091-go reported a clean Close() as error 501 "EOF".
// What the connection held (exclusive queues) goes once the client hangs up.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { useAmqpFixture } from './amqp-fixture.js';
import { Raw } from './raw-client.js';

const usher = useAmqpFixture('usher-amqp-client-close-');

/** Resolves true once the server hangs up on `raw`, false after `ms`. */
function hungUp(raw: Raw, ms: number): Promise<boolean> {
  if (raw.socket.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    raw.socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

test('after close-ok the socket stays open until the client hangs up; then its exclusive queue goes', {
  timeout: 10_000,
}, async () => {
  const raw = new Raw(usher.port);
  await raw.open('none');
  raw.method(1, {
    name: 'queue.declare', queue: 'client-close-exclusive', passive: false, durable: false,
    exclusive: true, autoDelete: false, noWait: false, arguments: new Map(),
  });
  assert.ok(await raw.expect('queue.declare-ok'));

  raw.method(0, { name: 'connection.close', replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 });
  assert.ok(await raw.expect('connection.close-ok'));
  assert.equal(await hungUp(raw, 500), false, 'the server hung up before the client did');

  raw.close();
  const deadline = Date.now() + 3000;
  while (usher.broker.hasQueue('client-close-exclusive') && Date.now() < deadline) await sleep(20);
  assert.equal(usher.broker.hasQueue('client-close-exclusive'), false, 'the exclusive queue outlived its connection');
});

// Found by a breaker: the channels lived on until the client hung up
// (up to 5 s), and, the connection writing nothing more, a no-ack
// consumer's deliveries went nowhere and were acked: 5,000 messages
// published in that window were gone, none delivered. RabbitMQ closes the
// channels before close-ok; so does Usher now.
test('a consumer stops at the client\'s connection.close, not when it hangs up', {
  timeout: 20_000,
}, async () => {
  const setup = await usher.connect();
  const publisher = await setup.createConfirmChannel();
  await publisher.assertQueue('client-close-noack', { durable: true });

  const raw = new Raw(usher.port);
  await raw.open('none');
  await raw.consume('client-close-noack', 'gone', true);
  raw.method(0, { name: 'connection.close', replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 });
  assert.ok(await raw.expect('connection.close-ok'));

  for (let i = 0; i < 500; i++) publisher.sendToQueue('client-close-noack', Buffer.from(`m${i}`));
  await publisher.waitForConfirms();
  await sleep(200);
  assert.equal(raw.methodsSeen.filter((name) => name === 'basic.deliver').length, 0);
  assert.equal(usher.broker.getQueue('client-close-noack').stats.ready, 500);
  raw.close();
});

test('a reply name is unroutable once its client sent connection.close', { timeout: 20_000 }, async () => {
  const setup = await usher.connect();
  const server = await setup.createConfirmChannel();
  await server.assertQueue('client-close-rpc', { durable: false });
  const returned: string[] = [];
  server.on('return', (message) => returned.push(message.content.toString()));

  const raw = new Raw(usher.port);
  await raw.open('none');
  await raw.consume('amq.rabbitmq.reply-to', 'replies', true);
  raw.publish('client-close-rpc', new Map(), 'ask', { replyTo: 'amq.rabbitmq.reply-to' });
  let request: false | { properties: { replyTo?: string } } = false;
  for (let i = 0; i < 50 && request === false; i++) {
    request = await server.get('client-close-rpc', { noAck: true });
    if (request === false) await sleep(20);
  }
  assert.ok(request !== false, 'the request arrived');

  raw.method(0, { name: 'connection.close', replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 });
  assert.ok(await raw.expect('connection.close-ok'));
  server.publish('', String(request.properties.replyTo), Buffer.from('late'), { mandatory: true });
  await server.waitForConfirms();
  assert.deepEqual(returned, ['late']);
  raw.close();
});

// As at channel.close, a publish read behind a method still running (a
// declare writing the topology journal) is routed in its turn, not
// dropped by the close that follows it: RabbitMQ's channels finish what
// they read before the connection's close-ok.
test('a publish queued behind a declare survives the connection.close after it', {
  timeout: 20_000,
}, async () => {
  const raw = new Raw(usher.port);
  await raw.open('none');
  raw.cork(() => {
    raw.method(1, {
      name: 'queue.declare', queue: 'client-close-queued', passive: false, durable: true,
      exclusive: false, autoDelete: false, noWait: false, arguments: new Map(),
    });
    raw.publish('client-close-queued', new Map(), 'behind the declare');
    raw.method(0, { name: 'connection.close', replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 });
  });
  assert.ok(await raw.expect('connection.close-ok'));
  const deadline = Date.now() + 3000;
  const ready = () => usher.broker.hasQueue('client-close-queued')
    ? usher.broker.getQueue('client-close-queued').stats.ready : 0;
  while (ready() === 0 && Date.now() < deadline) await sleep(20);
  assert.equal(ready(), 1);
  raw.close();
});
