// Direct reply-to beyond what the compatibility suite checks against
// RabbitMQ (compat/cases-direct-reply.ts): what happens to replies when
// the client reading them stops reading, or vanishes without a close.
// A reply is never queued, so neither may hold memory for it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import type { ConfirmChannel, ConsumeMessage, Message } from 'amqplib';

import { useAmqpFixture } from './amqp-fixture.js';
import { Raw } from './raw-client.js';

const REPLY_QUEUE = 'amq.rabbitmq.reply-to';
const usher = useAmqpFixture('usher-amqp-direct-reply-');

/** A server connection that takes one request from `queue` and hands it over. */
async function serverFor(queue: string): Promise<{ channel: ConfirmChannel; request: Promise<Message> }> {
  const connection = await usher.connect();
  const channel = await connection.createConfirmChannel();
  await channel.assertQueue(queue, { durable: false });
  const request = new Promise<Message>((resolve) => {
    void channel.consume(queue, (message) => {
      if (message !== null) resolve(message);
    }, { noAck: true });
  });
  return { channel, request };
}

/** Publishes a mandatory reply and waits for its confirm; true when it came back returned. */
async function reply(channel: ConfirmChannel, name: string, body: Buffer,
  returned: Set<string>, id: string): Promise<boolean> {
  channel.publish('', name, body, { mandatory: true, messageId: id });
  await channel.waitForConfirms();
  // A basic.return comes before the confirm's basic.ack.
  return returned.has(id);
}

test('replies to a client that stops reading are refused once 4 MiB wait, not held', {
  timeout: 30_000,
}, async () => {
  const { channel: server, request } = await serverFor('rpc-stalled');
  const returned = new Set<string>();
  server.on('return', (message: Message) => returned.add(String(message.properties.messageId)));

  const client = await usher.connectStallable();
  const clientChannel = await client.connection.createChannel();
  const got: ConsumeMessage[] = [];
  await clientChannel.consume(REPLY_QUEUE, (message) => {
    if (message !== null) got.push(message);
  }, { noAck: true });
  clientChannel.sendToQueue('rpc-stalled', Buffer.from('ask'), { replyTo: REPLY_QUEUE });
  const name = String((await request).properties.replyTo);

  client.stall(true);
  const body = Buffer.alloc(512 * 1024, 1);
  let sent = 0;
  let refusedAt = -1;
  // Bounded: 120 replies are 60 MiB, far past the broker's 4 MiB and the
  // kernel's buffers on both sides of the relay.
  for (; sent < 120 && refusedAt < 0; sent++) {
    if (await reply(server, name, body, returned, `r${sent}`)) refusedAt = sent;
  }
  assert.ok(refusedAt > 0, `no reply refused in ${sent}`);

  // Every reply taken before the refusal reaches the client once it reads.
  client.stall(false);
  const deadline = Date.now() + 10_000;
  while (got.length < refusedAt && Date.now() < deadline) await sleep(20);
  assert.equal(got.length, refusedAt);
  assert.deepEqual(got.map((m) => m.properties.messageId),
    Array.from({ length: refusedAt }, (_, i) => `r${i}`));

  // And it gets replies again.
  assert.equal(await reply(server, name, Buffer.from('small'), returned, 'after'), false);
});

test('a reply name ends with its connection, even one that drops without a close', {
  timeout: 20_000,
}, async () => {
  const { channel: server, request } = await serverFor('rpc-dropped');
  const returned = new Set<string>();
  server.on('return', (message: Message) => returned.add(String(message.properties.messageId)));

  const client = new Raw(usher.port);
  await client.open('none');
  await client.consume(REPLY_QUEUE, 'replies', true);
  client.publish('rpc-dropped', new Map(), 'ask', { replyTo: REPLY_QUEUE });
  const name = String((await request).properties.replyTo);

  assert.equal(await reply(server, name, Buffer.from('one'), returned, 'before'), false);
  assert.ok(await client.expect('basic.deliver'));

  client.close();
  await sleep(200);
  assert.equal(await reply(server, name, Buffer.from('two'), returned, 'after'), true);
});

/** A client channel with a reply consumer, and the reply name a request of its carries. */
async function replyNameVia(queue: string): Promise<{ name: string; got: ConsumeMessage[] }> {
  const { request } = await serverFor(queue);
  const client = await usher.connect();
  const channel = await client.createChannel();
  const got: ConsumeMessage[] = [];
  await channel.consume(REPLY_QUEUE, (message) => {
    if (message !== null) got.push(message);
  }, { noAck: true });
  channel.sendToQueue(queue, Buffer.from('ask'), { replyTo: REPLY_QUEUE });
  return { name: String((await request).properties.replyTo), got };
}

// RabbitMQ 3.10 routes a publish to the default exchange by each of its
// keys, CC and BCC too, and a key that is a reply name reaches that reply
// consumer whatever the other keys reach. Usher looked at the routing key
// alone, and only when no queue matched: a reply CC'd to a log queue was
// stored there and never reached its client (breaker).
test('a reply name among CC or BCC keys gets the reply, whatever else the publish reaches', {
  timeout: 20_000,
}, async () => {
  const { name, got } = await replyNameVia('rpc-cc');
  const connection = await usher.connect();
  const channel = await connection.createConfirmChannel();
  await channel.assertQueue('rpc-cc-log', { durable: false });

  channel.publish('', name, Buffer.from('key, CC to a queue'), { CC: ['rpc-cc-log'] });
  channel.publish('', 'rpc-cc-log', Buffer.from('CC'), { CC: [name] });
  channel.publish('', 'rpc-cc-log', Buffer.from('BCC'), { BCC: [name] });
  channel.publish('', 'nowhere', Buffer.from('BCC alone'), { BCC: [name] });
  channel.publish('', name, Buffer.from('once'), { CC: [name] });
  await channel.waitForConfirms();
  const deadline = Date.now() + 5_000;
  while (got.length < 5 && Date.now() < deadline) await sleep(20);
  await sleep(100);

  assert.deepEqual(got.map((m) => m.content.toString()),
    ['key, CC to a queue', 'CC', 'BCC', 'BCC alone', 'once']);
  // Delivered under the publish's own routing key, BCC taken out, as RabbitMQ does.
  assert.equal(got[1].fields.routingKey, 'rpc-cc-log');
  assert.equal(got[2].properties.headers?.BCC, undefined);
  assert.equal((await channel.checkQueue('rpc-cc-log')).messageCount, 3);
});

// RabbitMQ names the reply-to of a publish as it reads it; Usher held a
// transaction's publish with amq.rabbitmq.reply-to and named it at
// tx.commit, which then refused the whole transaction (406) once the
// reply consumer had been cancelled in between, and stored none of it
// (breaker).
test('a transaction\'s request keeps the reply name it was published with', {
  timeout: 20_000,
}, async () => {
  const setup = await usher.connect();
  const check = await setup.createChannel();
  await check.assertQueue('rpc-tx', { durable: false });

  const client = new Raw(usher.port);
  await client.open('tx');
  await client.consume(REPLY_QUEUE, 'replies', true);
  client.publish('rpc-tx', new Map(), 'ask', { replyTo: REPLY_QUEUE });
  client.method(1, { name: 'basic.cancel', consumerTag: 'replies', noWait: false });
  assert.ok(await client.expect('basic.cancel-ok'));
  client.method(1, { name: 'tx.commit' });
  const answer = await client.expect('tx.commit-ok', 'channel.close');
  assert.equal(answer?.name, 'tx.commit-ok', JSON.stringify(answer));

  const request = await check.get('rpc-tx', { noAck: true });
  assert.ok(request !== false, 'the request was stored');
  assert.ok(String(request.properties.replyTo).startsWith(`${REPLY_QUEUE}.`));
  client.close();
});
