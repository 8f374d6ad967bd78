// Publisher confirms with mixed outcomes, over amqplib's ConfirmChannel:
// since amqp-inbound, acks wait for the connection's next write and go out
// as one `multiple` ack. Every publish must still be answered exactly
// once, nacked when a queue refused it, and acked only once every queue
// it went to (a durable one among them) has it.

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';

import type { ChannelModel, ConfirmChannel } from 'amqplib';

import type { Broker } from '../../src/broker/broker.js';
import { encodeContent } from '../../src/amqp/frame-encoder.js';
import { type AmqpFixture, openAmqpFixture } from './amqp-fixture.js';
import { FRAME_MAX, Raw } from './raw-client.js';

let fixture: AmqpFixture;
let broker: Broker;
let connection: ChannelModel;

before(async () => {
  fixture = await openAmqpFixture('usher-confirm-outcomes-');
  broker = fixture.broker;
  connection = await fixture.connect();
  const channel = await connection.createChannel();
  await channel.assertQueue('co-present');
  await channel.close();
});

after(() => fixture.close());

type Outcome = 'ack' | 'nack';

/** Publishes with `publish` and resolves with each one's answer, failing on any answered twice. */
function answers(
  channel: ConfirmChannel,
  count: number,
  publish: (index: number, answered: (err: unknown) => void) => void,
): Promise<Outcome[]> {
  const outcomes: (Outcome | undefined)[] = new Array(count);
  let left = count;
  return new Promise((resolve, reject) => {
    channel.on('error', reject);
    for (let index = 0; index < count; index++) {
      publish(index, (err) => {
        if (outcomes[index] !== undefined) reject(new Error(`publish ${index} answered twice`));
        outcomes[index] = err === null || err === undefined ? 'ack' : 'nack';
        if (--left === 0) resolve(outcomes as Outcome[]);
      });
    }
  });
}

it('answers each of a burst once: refused ones nacked, the rest acked', async () => {
  const channel = await connection.createConfirmChannel();
  await channel.assertQueue('co-durable', { durable: true });
  await channel.assertQueue('co-transient', { durable: false });
  await channel.assertQueue('co-full', {
    durable: true,
    arguments: { 'x-max-length': 3, 'x-overflow': 'reject-publish' },
  });
  await channel.assertExchange('co-fan', 'fanout', { durable: true });
  await channel.bindQueue('co-durable', 'co-fan', '');
  await channel.bindQueue('co-transient', 'co-fan', '');
  let returned = 0;
  channel.on('return', () => returned++);

  // Written in one go, so they arrive in few socket chunks and land together.
  const kinds = ['fan', 'full', 'unroutable', 'transient', 'durable'] as const;
  const count = 100;
  const outcomes = await answers(channel, count, (index, answered) => {
    const body = Buffer.from(`message ${index}`);
    switch (kinds[index % kinds.length]) {
      case 'fan':
        channel.publish('co-fan', '', body, { persistent: true }, answered);
        break;
      case 'full':
        channel.sendToQueue('co-full', body, { persistent: true }, answered);
        break;
      case 'unroutable':
        channel.publish('', 'co-nowhere', body, { mandatory: true }, answered);
        break;
      case 'transient':
        channel.sendToQueue('co-transient', body, {}, answered);
        break;
      default:
        channel.sendToQueue('co-durable', body, { persistent: true }, answered);
    }
  });

  const expected = outcomes.map((_, index) => {
    const toFull = index % kinds.length === 1;
    return toFull && index >= 3 * kinds.length ? 'nack' : 'ack';
  });
  assert.deepEqual(outcomes, expected);
  assert.equal(returned, count / kinds.length, 'every unroutable one returned');

  const durable = await channel.checkQueue('co-durable');
  const transient = await channel.checkQueue('co-transient');
  const full = await channel.checkQueue('co-full');
  assert.deepEqual(
    [durable.messageCount, transient.messageCount, full.messageCount],
    [2 * (count / kinds.length), 2 * (count / kinds.length), 3],
  );
  await channel.close();
});

it('acks a publish to a durable and a transient queue only once it is on disk', async () => {
  const channel = await connection.createConfirmChannel();
  await channel.assertExchange('co-pair', 'fanout', { durable: true });
  const pair = [['co-pair-durable', true], ['co-pair-transient', false]] as const;
  for (const [queue, durable] of pair) {
    await channel.assertQueue(queue, { durable });
    await channel.bindQueue(queue, 'co-pair', '');
  }

  // A broker that sees the ack before the durable queue holds it would
  // lose the message in a crash; here, the queue must hold it when acked.
  const count = 40;
  const held: number[] = [];
  await answers(channel, count, (index, answered) => {
    channel.publish('co-pair', '', Buffer.from(`pair ${index}`), { persistent: true }, (err) => {
      held.push(broker.getQueue('co-pair-durable').stats.published);
      answered(err);
    });
  });
  held.forEach((messages, order) =>
    assert.ok(messages >= order + 1, `ack ${order} came when the durable queue held ${messages}`));
  await channel.close();
});

it('answers a publish to a missing exchange with the channel close alone, no nack', async () => {
  // RabbitMQ sends no basic.nack first; with one, aio-pika raised the nack
  // instead of the 404, and php-amqp's waitForConfirm returned quietly
  // (new user). The publish before it is still confirmed.
  const raw = new Raw(fixture.port);
  try {
    await raw.open('confirm');
    raw.publish('co-present', new Map(), 'kept');
    raw.send(encodeContent(1, {
      name: 'basic.publish', exchange: 'co-no-such-exchange', routingKey: 'k',
      mandatory: false, immediate: false,
    }, {}, Buffer.from('lost'), FRAME_MAX));
    const first = await raw.expect('basic.ack', 'basic.nack', 'channel.close');
    assert.deepEqual(first, { name: 'basic.ack', deliveryTag: 1, multiple: false });
    const closed = await raw.expect('basic.ack', 'basic.nack', 'channel.close');
    assert.ok(closed !== null && closed.name === 'channel.close', JSON.stringify(closed));
    assert.equal(closed.replyCode, 404);
    assert.ok(!raw.methodsSeen.includes('basic.nack'), raw.methodsSeen.join(', '));
  } finally {
    raw.close();
  }
});
