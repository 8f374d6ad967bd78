// consume() of connect('amqp://...') done the AMQP way: basic.consume on a
// channel of its own with a prefetch of the consumer's concurrency (the
// broker counts a consumer and holds back the rest), acks by delivery tag,
// basic.cancel on stop, and a consumer that disconnects gives its unacked
// messages back to the others. Checked from the broker's side.

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import amqplib from 'amqplib';

import { Authenticator } from '../../src/auth/authenticator.js';
import { UserStore } from '../../src/auth/user-store.js';
import type { Broker } from '../../src/broker/broker.js';
import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import { connect, UsherClientError, type UsherClient } from '../../src/client/index.js';
import type { ConsumerMessage } from '../../src/client/consumer.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let server: AmqpServer;
let url: string;
let port: number;
let authenticator: Authenticator;
const clients: UsherClient[] = [];
/** An amqplib connection that asks the broker how many consumers a queue has. */
let observer: amqplib.ChannelModel;

before(async () => {
  dir = tempDir('usher-client-amqp-consume-');
  broker = await openBroker(dir.path);
  // A user of its own lets a case end its connections (by deleting it).
  authenticator = new Authenticator({ store: UserStore.inMemory(), logger: silentLogger });
  await authenticator.store.addUser('mover', 'mover password', { permissions: ALL });
  server = await createAmqpServer({
    broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 1024 * 1024,
    authenticator,
  });
  port = (await server.listen(0, '127.0.0.1')).port;
  url = `amqp://guest:guest@127.0.0.1:${port}`;
  observer = await amqplib.connect(url);
});

after(async () => {
  await observer.close();
  for (const client of clients) await client.close().catch(() => {});
  await server.close();
  await broker.close();
  dir.remove();
});

function client(): UsherClient {
  const usher = connect(url);
  clients.push(usher);
  return usher;
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Consumers the broker counts on `queue` (queue.declare-ok), and its messages. */
async function seenByBroker(queue: string) {
  const channel = await observer.createChannel();
  const { consumerCount } = await channel.checkQueue(queue);
  await channel.close();
  const { stats } = broker.getQueue(queue);
  return { consumers: consumerCount, ready: stats.ready, inFlight: stats.inFlight };
}

const consumersOf = async (queue: string) => (await seenByBroker(queue)).consumers;

const ALL = { publish: ['*'], consume: ['*'], manage: ['*'] };

/** A handler that holds every message until release() and records it. */
function holding() {
  const held: ConsumerMessage[] = [];
  const done: ConsumerMessage[] = [];
  let release = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  const handler = async (message: ConsumerMessage) => {
    held.push(message);
    await released;
    done.push(message);
  };
  return { held, done, handler, release: () => release() };
}

it('consumes with basic.consume: one consumer, prefetch = concurrency, acked by tag', {
  timeout: 20_000,
}, async () => {
  const usher = client();
  await usher.createQueue('push.prefetch');
  const bodies = Array.from({ length: 10 }, (_, n) => ({ body: { n } }));
  await usher.publishBatch('push.prefetch', bodies);

  const work = holding();
  const consumer = usher.consume('push.prefetch', work.handler, { concurrency: 2 });
  await until('two handlers running', () => work.held.length === 2);
  await sleep(150);
  assert.equal(work.held.length, 2, 'no more than the prefetch is delivered');
  assert.deepEqual(await seenByBroker('push.prefetch'), { consumers: 1, ready: 8, inFlight: 2 });

  work.release();
  await until('all ten handled', () => work.done.length === 10);
  await until('all acked', () => broker.getQueue('push.prefetch').stats.acked === 10);
  await consumer.stop();
  assert.deepEqual(await seenByBroker('push.prefetch'), { consumers: 0, ready: 0, inFlight: 0 });
  assert.deepEqual(work.done.map((m) => (m.body as { n: number }).n).sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.ok(work.done.every((m) => m.attempt === 1 && !m.redelivered));
});

it('retries a message whose handler threw after the queue\'s backoff, as over HTTP', {
  timeout: 20_000,
}, async () => {
  const usher = client();
  await usher.createQueue('push.backoff', { backoff: { initialMs: 300, jitter: 0 } });
  await usher.publish('push.backoff', 'ticket');

  const tries: number[] = [];
  const consumer = usher.consume('push.backoff', async () => {
    tries.push(performance.now());
    if (tries.length === 1) throw new Error('payment service down');
  });
  await until('a retry', () => tries.length === 2);
  await consumer.stop();

  // It used to come back at once: a handler failing on every try used
  // up its 10 attempts in 2 s (new-user session).
  assert.ok(tries[1] - tries[0] >= 270, `retried after ${tries[1] - tries[0]} ms`);
});

it('stop() cancels the consumer: what was not handed out stays ready, unleased', {
  timeout: 20_000,
}, async () => {
  const usher = client();
  await usher.createQueue('push.cancel');
  await usher.publishBatch('push.cancel', ['a', 'b', 'c', 'd'].map((body) => ({ body })));

  const work = holding();
  const consumer = usher.consume('push.cancel', work.handler, { concurrency: 1 });
  await until('one handler running', () => work.held.length === 1);
  assert.equal(await consumersOf('push.cancel'), 1);
  const stopping = consumer.stop();
  await sleep(50);
  assert.equal(await consumersOf('push.cancel'), 0, 'cancelled before the handler ends');
  work.release();
  await stopping;

  assert.equal(work.done.length, 1);
  assert.deepEqual(await seenByBroker('push.cancel'), { consumers: 0, ready: 3, inFlight: 0 });
  assert.equal(broker.getQueue('push.cancel').stats.acked, 1);
});

it('a consumer that disconnects gives its unacked messages to another, redelivered', {
  timeout: 20_000,
}, async () => {
  const first = client();
  await first.createQueue('push.handover', { backoff: { initialMs: 0 } });
  await first.publishBatch('push.handover', ['a', 'b', 'c'].map((body) => ({ body })));
  const stuck = holding();
  first.consume('push.handover', stuck.handler, { concurrency: 2 });
  await until('two held by the first consumer', () => stuck.held.length === 2);

  const got: ConsumerMessage[] = [];
  const second = client();
  const consumer = second.consume('push.handover', (message) => {
    got.push(message);
  }, { concurrency: 4 });
  await until('the third reaches the second consumer', () => got.length === 1);

  first.abort();
  await until('all three at the second consumer', () => got.length === 3);
  const again = got.filter((m) => m.redelivered);
  assert.deepEqual(again.map((m) => m.body).sort(), stuck.held.map((m) => m.body).sort());
  assert.ok(again.every((m) => m.attempt === 2));
  await consumer.stop();
  assert.deepEqual(await seenByBroker('push.handover'), { consumers: 0, ready: 0, inFlight: 0 });
  stuck.release();
});

it('reports a deleted queue and consumes again once it is back', { timeout: 20_000 }, async () => {
  const usher = client();
  await usher.createQueue('push.deleted');
  const errors: unknown[] = [];
  const got: unknown[] = [];
  const consumer = usher.consume('push.deleted', (message) => {
    got.push(message.body);
  }, { onError: (error) => errors.push(error) });
  await until('subscribed', async () => (await consumersOf('push.deleted')) === 1);

  await usher.deleteQueue('push.deleted');
  await until('the cancel reported', () => errors.length > 0);
  assert.ok(errors[0] instanceof UsherClientError);
  assert.equal(errors[0].code, 'QUEUE_NOT_FOUND');

  await usher.createQueue('push.deleted');
  await usher.publish('push.deleted', 'back');
  await until('the consumer takes it', () => got.length === 1);
  assert.deepEqual(got, ['back']);
  await consumer.stop();
});

it('refuses visibilityTimeoutMs over AMQP at once', () => {
  const usher = client();
  assert.throws(() => usher.consume('push.any', () => {}, { visibilityTimeoutMs: 1000 }),
    (err: unknown) => err instanceof UsherClientError && err.code === 'UNSUPPORTED');
});

it('consumes again on a new connection after the old one was lost', {
  timeout: 30_000,
}, async () => {
  const usher = connect(`amqp://mover:${encodeURIComponent('mover password')}@127.0.0.1:${port}`);
  clients.push(usher);
  await usher.createQueue('push.reconnect');
  const errors: unknown[] = [];
  const got: unknown[] = [];
  const consumer = usher.consume('push.reconnect', (message) => {
    got.push(message.body);
  }, { onError: (error) => errors.push(error) });
  await usher.publish('push.reconnect', 'before');
  // Acked before the cut: else the broker rightly delivers it again.
  await until('the first message acked', () => broker.getQueue('push.reconnect').stats.acked === 1);

  // The broker ends a deleted user's connections (320), as RabbitMQ does.
  await authenticator.store.deleteUser('mover');
  await until('the loss reported', () => errors.length > 0);
  // Long enough for the consumer's first reconnect to be refused too.
  await sleep(400);
  await authenticator.store.addUser('mover', 'mover password', { permissions: ALL });

  // A reconnect the consumer began before the user was back fails, and so
  // does a publish that shares it: the next call tries anew.
  await until('a publish on a new connection', () =>
    usher.publish('push.reconnect', 'after').then(() => true, () => false), 10_000);
  await until('the consumer on the new connection', () => got.includes('after'), 20_000);
  assert.equal(got[0], 'before');
  assert.equal(got.filter((body) => body === 'before').length, 1, 'acked: not delivered again');
  await consumer.stop();
});
