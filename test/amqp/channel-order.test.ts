// A channel runs its methods in the order they came, as RabbitMQ does,
// also when a client sends them without waiting for each answer (the
// protocol allows it; amqplib waits, other clients need not). A publish
// read while a declare before it still waited for the topology journal's
// write was routed at once, against the topology from before that
// declare: confirmed, then dropped as unroutable; or routed past an
// unbind sent before it. And confirm.select-ok came back ahead of the
// answers to methods sent before it. Found by a breaker session's
// raw-socket probe; a second one found what the first fix broke or left
// (a close, a tx.select, a transaction's publish, a refused method
// overtaking what was queued before it, and publishes read before a
// refusal dropped). Each case sends its methods in one TCP write.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { encodeContent } from '../../src/amqp/frame-encoder.js';
import type { Method } from '../../src/amqp/methods.js';
import { useAmqpFixture } from './amqp-fixture.js';
import { FRAME_MAX, Raw } from './raw-client.js';

const fixture = useAmqpFixture('usher-channel-order-');

function declareQueue(queue: string): Method {
  return {
    name: 'queue.declare', queue, passive: false, durable: true, exclusive: false,
    autoDelete: false, noWait: false, arguments: new Map(),
  };
}

function declareExchange(exchange: string): Method {
  return {
    name: 'exchange.declare', exchange, type: 'direct', passive: false, durable: true,
    autoDelete: false, internal: false, noWait: false, arguments: new Map(),
  };
}

function bind(queue: string, exchange: string, routingKey: string): Method {
  return { name: 'queue.bind', queue, exchange, routingKey, noWait: false, arguments: new Map() };
}

function publishTo(exchange: string, routingKey: string, body: string): Buffer {
  const method: Method = {
    name: 'basic.publish', exchange, routingKey, mandatory: false, immediate: false,
  };
  return encodeContent(1, method, { deliveryMode: 2 }, Buffer.from(body), FRAME_MAX);
}

// A case the old code fails can wait forever for an answer (raw-client.ts).
const LIMIT = { timeout: 10_000 };

const get = (queue: string): Method => ({ name: 'basic.get', queue, noAck: true });

/** A raw client, its channel 1 opened in `mode`, for `use`; closed after. */
async function withRaw(
  mode: 'confirm' | 'tx' | 'none',
  use: (raw: Raw) => Promise<void>,
): Promise<void> {
  const raw = new Raw(fixture.port);
  try {
    await raw.open(mode);
    await use(raw);
  } finally {
    raw.close();
  }
}

/** The names of the methods the server sent since `from`. */
const since = (raw: Raw, from: number) => raw.methodsSeen.slice(from);

test('a publish after two declares sent with it reaches the queue they declare',
  LIMIT, () => withRaw('confirm', async (raw) => {
  const from = raw.methodsSeen.length;
  raw.cork(() => {
    raw.method(1, declareQueue('order-other'));
    raw.method(1, declareQueue('order-target'));
    raw.send(publishTo('', 'order-target', 'ticket 1'));
    raw.method(1, get('order-target'));
  });
  const got = await raw.expect('basic.get-ok', 'basic.get-empty');
  assert.equal(got?.name, 'basic.get-ok', 'the confirmed publish is in the queue');
  assert.deepEqual(since(raw, from).slice(0, 3),
    ['queue.declare-ok', 'queue.declare-ok', 'basic.ack']);
}));

test('a publish after a declare and a bind sent with it is routed through the binding',
  LIMIT, () => withRaw('confirm', async (raw) => {
  const from = raw.methodsSeen.length;
  raw.cork(() => {
    raw.method(1, declareExchange('order-x'));
    raw.method(1, declareQueue('order-bound'));
    raw.method(1, bind('order-bound', 'order-x', 'k'));
    raw.send(publishTo('order-x', 'k', 'ticket 2'));
    raw.method(1, get('order-bound'));
  });
  const got = await raw.expect('basic.get-ok', 'basic.get-empty');
  assert.equal(got?.name, 'basic.get-ok', 'the confirmed publish is in the bound queue');
  assert.deepEqual(since(raw, from).slice(0, 4),
    ['exchange.declare-ok', 'queue.declare-ok', 'queue.bind-ok', 'basic.ack']);
}));

test('a publish after an unbind sent with it is not routed through the old binding',
  LIMIT, () => withRaw('confirm', async (raw) => {
  raw.method(1, declareExchange('order-y'));
  assert.ok(await raw.expect('exchange.declare-ok'));
  raw.method(1, declareQueue('order-unbound'));
  assert.ok(await raw.expect('queue.declare-ok'));
  raw.method(1, bind('order-unbound', 'order-y', 'k'));
  assert.ok(await raw.expect('queue.bind-ok'));

  raw.cork(() => {
    // A declare of a new queue first: its journal write holds the
    // channel while the unbind and the publish are read.
    raw.method(1, declareQueue('order-slow'));
    raw.method(1, {
      name: 'queue.unbind', queue: 'order-unbound', exchange: 'order-y', routingKey: 'k',
      arguments: new Map(),
    });
    raw.send(publishTo('order-y', 'k', 'ticket 3'));
    raw.method(1, get('order-unbound'));
  });
  const got = await raw.expect('basic.get-ok', 'basic.get-empty');
  assert.equal(got?.name, 'basic.get-empty', 'nothing routed through the removed binding');
}));

test('confirm.select-ok comes after the answers to the methods sent before it',
  LIMIT, () => withRaw('none', async (raw) => {
  const from = raw.methodsSeen.length;
  raw.cork(() => {
    raw.method(1, declareQueue('order-confirmed'));
    // Before confirm.select: not counted, so the publish after it is tag 1.
    raw.send(publishTo('', 'order-confirmed', 'unconfirmed'));
    raw.method(1, { name: 'confirm.select', noWait: false });
    raw.send(publishTo('', 'order-confirmed', 'confirmed'));
  });
  const acks = await raw.acksUpTo(1);
  assert.deepEqual(acks, [{ deliveryTag: 1, multiple: false }]);
  assert.deepEqual(since(raw, from).slice(0, 3),
    ['queue.declare-ok', 'confirm.select-ok', 'basic.ack']);
}));

test('a publish sent between a declare and channel.close is kept',
  LIMIT, () => withRaw('none', async (raw) => {
  raw.cork(() => {
    raw.method(1, declareQueue('order-closed'));
    raw.send(publishTo('', 'order-closed', 'kept'));
    raw.method(1, {
      name: 'channel.close', replyCode: 200, replyText: '', classId: 0, methodId: 0,
    });
  });
  assert.ok(await raw.expect('channel.close-ok'));
  raw.method(2, { name: 'channel.open' });
  assert.ok(await raw.expect('channel.open-ok'));
  // close-ok does not wait for the publish to be durable, and only then
  // is it in the queue: asked again for a while, not dropped.
  let got: Method | null = null;
  for (let tries = 0; tries < 40 && got?.name !== 'basic.get-ok'; tries++) {
    if (tries > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    raw.method(2, get('order-closed'));
    got = await raw.expect('basic.get-ok', 'basic.get-empty');
  }
  assert.equal(got?.name, 'basic.get-ok', 'the publish before the close is in the queue');
}));

test('tx.select behind a pending confirm.select is refused in its turn, after the declare',
  LIMIT, () => withRaw('none', async (raw) => {
  const from = raw.methodsSeen.length;
  raw.cork(() => {
    raw.method(1, declareQueue('order-modes'));
    raw.method(1, { name: 'confirm.select', noWait: false });
    raw.method(1, { name: 'tx.select' });
  });
  const closed = await raw.expect('channel.close');
  assert.equal(closed?.name === 'channel.close' && closed.replyCode, 406);
  assert.deepEqual(since(raw, from).slice(0, 2), ['queue.declare-ok', 'confirm.select-ok']);
}));

test('a transaction publishes to an exchange declared in the same write',
  LIMIT, () => withRaw('tx', async (raw) => {
  raw.cork(() => {
    raw.method(1, declareExchange('order-tx-x'));
    raw.method(1, declareQueue('order-tx-q'));
    raw.method(1, bind('order-tx-q', 'order-tx-x', 'k'));
    raw.send(publishTo('order-tx-x', 'k', 'in the transaction'));
    raw.method(1, { name: 'tx.commit' });
    raw.method(1, get('order-tx-q'));
  });
  assert.ok(await raw.expect('tx.commit-ok'));
  const got = await raw.expect('basic.get-ok', 'basic.get-empty');
  assert.equal(got?.name, 'basic.get-ok', 'the committed publish is in the bound queue');
}));

test('publishes read before a method refused at once, or in its turn, are kept',
  LIMIT, async () => {
  for (const [queue, pending] of [['order-kept-now', false], ['order-kept-later', true]] as const) {
    await withRaw('none', async (raw) => {
      raw.method(1, declareQueue(queue));
      assert.ok(await raw.expect('queue.declare-ok'));
      raw.cork(() => {
        // basic.qos: a method still pending while the rest is read.
        if (pending) {
          raw.method(1, { name: 'basic.qos', prefetchSize: 0, prefetchCount: 10, global: false });
        }
        for (let i = 0; i < 3; i++) raw.send(publishTo('', queue, `kept ${i}`));
        raw.method(1, { name: 'basic.ack', deliveryTag: 99, multiple: false });
      });
      const closed = await raw.expect('channel.close');
      assert.equal(closed?.name === 'channel.close' && closed.replyCode, 406);
    });
    await eventuallyCount(queue, 3);
  }
});

test('an ack sent with the basic.get before it settles what the get hands out',
  LIMIT, () => withRaw('confirm', async (raw) => {
  await declareWithOne(raw, 'order-get-ack');

  raw.cork(() => {
    raw.method(1, { name: 'basic.get', queue: 'order-get-ack', noAck: false });
    raw.method(1, { name: 'basic.ack', deliveryTag: 1, multiple: false });
    raw.method(1, get('order-get-ack'));
  });
  assert.equal((await raw.expect('basic.get-ok'))?.name, 'basic.get-ok');
  const after = await raw.expect('basic.get-ok', 'basic.get-empty', 'channel.close');
  assert.equal(after?.name, 'basic.get-empty', 'the ack found its delivery and settled it');
}));

test('an ack sent after basic.recover finds its delivery taken back',
  LIMIT, () => withRaw('confirm', async (raw) => {
  await declareWithOne(raw, 'order-recover-ack');
  raw.method(1, { name: 'basic.get', queue: 'order-recover-ack', noAck: false });
  assert.equal((await raw.expect('basic.get-ok'))?.name, 'basic.get-ok');

  const from = raw.methodsSeen.length;
  raw.cork(() => {
    raw.method(1, { name: 'basic.recover', requeue: true });
    raw.method(1, { name: 'basic.ack', deliveryTag: 1, multiple: false });
  });
  const closed = await raw.expect('channel.close');
  assert.equal(closed?.name === 'channel.close' && closed.replyCode, 406);
  assert.deepEqual(since(raw, from).slice(0, 2), ['basic.recover-ok', 'channel.close']);
  await eventuallyCount('order-recover-ack', 1);
}));

/** Declares `queue` and puts one confirmed message in it (channel 1 confirms). */
async function declareWithOne(raw: Raw, queue: string): Promise<void> {
  raw.method(1, declareQueue(queue));
  assert.ok(await raw.expect('queue.declare-ok'));
  raw.send(publishTo('', queue, 'ticket'));
  await raw.acksUpTo(1);
}

/** Waits (up to 2 s) for `queue` to hold `count` messages: publishes land after close-ok. */
async function eventuallyCount(queue: string, count: number): Promise<void> {
  for (let tries = 0; tries < 40; tries++) {
    if (fixture.broker.getQueue(queue).stats.total === count) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(fixture.broker.getQueue(queue).stats.total, count, `${queue} holds the publishes`);
}
