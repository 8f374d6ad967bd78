// RabbitMQ's six tutorials, written with amqplib against Usher's AMQP
// listener over real TCP, plus CASES.md C1 (a consumer dies holding
// messages), publisher confirms, dead-letter x-death and HTTP interop.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';

import type { Broker } from '../../src/broker/broker.js';
import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let server: AmqpServer;
let url: string;
const opened: ChannelModel[] = [];

before(async () => {
  dir = tempDir('usher-amqp-');
  broker = await openBroker(dir.path);
  server = await createAmqpServer({
    broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 16 * 1024 * 1024,
  });
  const address = await server.listen(0, '127.0.0.1');
  url = `amqp://guest:guest@127.0.0.1:${address.port}`;
});

after(async () => {
  for (const connection of opened) await connection.close().catch(() => {});
  await server.close();
  await broker.close();
  dir.remove();
});

async function connect(): Promise<ChannelModel> {
  const connection = await amqp.connect(url);
  connection.on('error', () => {});
  opened.push(connection);
  return connection;
}

/** Resolves with the first `count` messages `consume` delivers. */
function collect(channel: Channel, queue: string, count: number, noAck = true): Promise<ConsumeMessage[]> {
  return new Promise((resolve) => {
    const got: ConsumeMessage[] = [];
    void channel.consume(queue, (message) => {
      if (message === null) return;
      got.push(message);
      if (got.length === count) resolve(got);
    }, { noAck });
  });
}

const text = (messages: ConsumeMessage[]) => messages.map((m) => m.content.toString());

describe('RabbitMQ tutorials with amqplib', () => {
  it('1. hello world', async () => {
    const channel = await (await connect()).createChannel();
    await channel.assertQueue('hello', { durable: false });
    channel.sendToQueue('hello', Buffer.from('Hello World!'));

    assert.deepEqual(text(await collect(channel, 'hello', 1)), ['Hello World!']);
  });

  it('2. work queues: fair dispatch with prefetch 1 and acks', async () => {
    const producer = await (await connect()).createChannel();
    await producer.assertQueue('task_queue', { durable: true });

    // Both workers are up before the tasks come, so the split shows the
    // dispatch, not which worker finished connecting first.
    const done: string[][] = [[], []];
    for (const worker of [0, 1]) {
      const channel = await (await connect()).createChannel();
      await channel.prefetch(1);
      await channel.consume('task_queue', async (message) => {
        if (message === null) return;
        await sleep(5);
        done[worker].push(message.content.toString());
        channel.ack(message);
      }, { noAck: false });
    }
    for (let i = 0; i < 10; i++) {
      producer.sendToQueue('task_queue', Buffer.from(`task ${i}`), { persistent: true });
    }
    for (let i = 0; i < 100 && done[0].length + done[1].length < 10; i++) await sleep(20);

    assert.equal(done[0].length + done[1].length, 10);
    assert.ok(done[0].length > 0 && done[1].length > 0, `one worker got all: ${done}`);
  });

  it('3. publish/subscribe: a fanout exchange reaches every bound queue', async () => {
    const channel = await (await connect()).createChannel();
    await channel.assertExchange('logs', 'fanout', { durable: false });
    const queues = await Promise.all([0, 1].map(async () => {
      const { queue } = await channel.assertQueue('', { exclusive: true });
      await channel.bindQueue(queue, 'logs', '');
      return queue;
    }));
    assert.ok(queues.every((q) => q.startsWith('amq.gen-')));

    const received = Promise.all(queues.map((q) => collect(channel, q, 1)));
    channel.publish('logs', '', Buffer.from('info: hello'));
    assert.deepEqual((await received).map(text), [['info: hello'], ['info: hello']]);
  });

  it('4. routing: a direct exchange by severity', async () => {
    const channel = await (await connect()).createChannel();
    await channel.assertExchange('direct_logs', 'direct', { durable: false });
    const { queue } = await channel.assertQueue('', { exclusive: true });
    for (const severity of ['warning', 'error']) await channel.bindQueue(queue, 'direct_logs', severity);

    const received = collect(channel, queue, 2);
    for (const severity of ['info', 'warning', 'error']) {
      channel.publish('direct_logs', severity, Buffer.from(severity));
    }
    assert.deepEqual(text(await received), ['warning', 'error']);
  });

  it('5. topics: * and # patterns', async () => {
    const channel = await (await connect()).createChannel();
    await channel.assertExchange('topic_logs', 'topic', { durable: false });
    const { queue } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(queue, 'topic_logs', '*.orange.*');
    await channel.bindQueue(queue, 'topic_logs', 'lazy.#');

    const received = collect(channel, queue, 3);
    for (const key of ['quick.orange.rabbit', 'quick.brown.fox', 'lazy.pink.rabbit', 'lazy']) {
      channel.publish('topic_logs', key, Buffer.from(key));
    }
    assert.deepEqual(text(await received), ['quick.orange.rabbit', 'lazy.pink.rabbit', 'lazy']);
  });

  it('6. RPC: reply-to and correlation id', async () => {
    const serverChannel = await (await connect()).createChannel();
    await serverChannel.assertQueue('rpc_queue', { durable: false });
    await serverChannel.consume('rpc_queue', (message) => {
      if (message === null) return;
      const n = Number(message.content.toString());
      serverChannel.sendToQueue(message.properties.replyTo, Buffer.from(String(n * n)), {
        correlationId: message.properties.correlationId,
      });
      serverChannel.ack(message);
    });

    const client = await (await connect()).createChannel();
    const { queue: replyTo } = await client.assertQueue('', { exclusive: true });
    const reply = collect(client, replyTo, 1);
    client.sendToQueue('rpc_queue', Buffer.from('7'), { correlationId: 'abc', replyTo });

    const [answer] = await reply;
    assert.equal(answer.content.toString(), '49');
    assert.equal(answer.properties.correlationId, 'abc');
  });
});

describe('consumers, confirms and dead letters', () => {
  it('C1: a consumer that dies holding messages gives them back, redelivered', async () => {
    const setup = await (await connect()).createChannel();
    await setup.assertQueue('c1');
    for (let i = 0; i < 100; i++) setup.sendToQueue('c1', Buffer.from(String(i)));
    for (let i = 0; i < 50 && broker.getQueue('c1').stats.ready < 100; i++) await sleep(10);

    const dying = await connect();
    const channel = await dying.createChannel();
    await channel.prefetch(20);
    const held = await collect(channel, 'c1', 20, false);
    await sleep(50);
    assert.equal(held.length, 20);
    assert.equal(broker.getQueue('c1').stats.inFlight, 20, 'never more than the prefetch');

    await dying.close();
    for (let i = 0; i < 50 && broker.getQueue('c1').stats.inFlight > 0; i++) await sleep(10);
    assert.equal(broker.getQueue('c1').stats.inFlight, 0);
    assert.equal(broker.getQueue('c1').stats.ready, 100);

    const next = await (await connect()).createChannel();
    await next.prefetch(20);
    const again = await collect(next, 'c1', 20, false);
    assert.ok(again.every((m) => m.fields.redelivered), 'the 20 come back first, marked redelivered');
    const [peeked] = await broker.receive('c1', { max: 1, waitMs: 0 });
    assert.equal(peeked.attempt, 1, 'the other 80 were never delivered');
  });

  it('confirms every publish once it is durable', async () => {
    const channel = await (await connect()).createConfirmChannel();
    await channel.assertQueue('confirmed');
    for (let i = 0; i < 1000; i++) channel.sendToQueue('confirmed', Buffer.from(String(i)), { persistent: true });
    await channel.waitForConfirms();

    assert.equal(broker.getQueue('confirmed').stats.total, 1000);
  });

  it('dead-letters a rejected message with x-death as RabbitMQ users read it', async () => {
    const channel = await (await connect()).createChannel();
    // As in RabbitMQ, dead letters to a queue nobody declared are dropped.
    await channel.assertQueue('work.dead');
    await channel.assertQueue('work', {
      arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'work.dead' },
    });
    channel.sendToQueue('work', Buffer.from('poison'), { headers: { tenant: 'eu', tries: 3 } });
    const [message] = await collect(channel, 'work', 1, false);
    channel.nack(message, false, false);

    const [dead] = await collect(channel, 'work.dead', 1);
    assert.equal(dead.content.toString(), 'poison');
    assert.equal(dead.properties.headers?.tenant, 'eu');
    assert.equal(dead.properties.headers?.tries, 3);
    const [death] = dead.properties.headers?.['x-death'] ?? [];
    assert.equal(death.reason, 'rejected');
    assert.equal(death.queue, 'work');
  });

  it('carries messages between AMQP and HTTP with body and headers intact', async () => {
    const channel = await (await connect()).createChannel();
    await channel.assertQueue('bridge');
    channel.sendToQueue('bridge', Buffer.from('{"a":1}'), {
      contentType: 'application/json', headers: { trace: 't-1' }, priority: 5,
    });
    for (let i = 0; i < 50 && broker.getQueue('bridge').stats.ready < 1; i++) await sleep(10);

    const [overHttp] = await broker.receive('bridge', { max: 1, waitMs: 0 });
    assert.equal(overHttp.body.toString(), '{"a":1}');
    assert.equal(overHttp.headers['content-type'], 'application/json');
    assert.equal(overHttp.headers.trace, 't-1');
    assert.equal(overHttp.priority, 5);
    await broker.ack('bridge', [overHttp.receipt]);

    await broker.publish('bridge', [{ body: Buffer.from('from http'), headers: { k: 'v' } }]);
    const [overAmqp] = await collect(channel, 'bridge', 1);
    assert.equal(overAmqp.content.toString(), 'from http');
    assert.equal(overAmqp.properties.headers?.k, 'v');
  });

  it('runs a channel in order: a purge after a publish purges it', async () => {
    const channel = await (await connect()).createChannel();
    await channel.assertQueue('in-order');
    channel.sendToQueue('in-order', Buffer.from('x'));
    const { messageCount } = await channel.purgeQueue('in-order');

    assert.equal(messageCount, 1);
    assert.equal(broker.getQueue('in-order').stats.total, 0);
  });

  it('keeps publishes sent just before the channel closes', async () => {
    const channel = await (await connect()).createChannel();
    await channel.assertQueue('closing');
    for (let i = 0; i < 5; i++) channel.sendToQueue('closing', Buffer.from(String(i)));
    await channel.close();

    for (let i = 0; i < 50 && broker.getQueue('closing').stats.total < 5; i++) await sleep(10);
    assert.equal(broker.getQueue('closing').stats.total, 5);
  });

  it('a channel error closes that channel only', async () => {
    const connection = await connect();
    const doomed = await connection.createChannel();
    doomed.on('error', () => {});
    await assert.rejects(doomed.checkQueue('no-such-queue'), /404/);

    const fine = await connection.createChannel();
    const { queue } = await fine.assertQueue('still-fine');
    assert.equal(queue, 'still-fine');
  });
});
