// basic.publish reads its exchange and routing key through a one-entry
// cache since amqp-inbound (ShortstrCache): publishes in one burst whose
// keys differ in a single byte, at the end or inside a multi-byte
// character, and that alternate exchanges, must each be routed by their
// own key; and every property must come back to a consumer as sent.

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';

import type { ChannelModel, ConsumeMessage } from 'amqplib';

import { type AmqpFixture, openAmqpFixture } from './amqp-fixture.js';

let fixture: AmqpFixture;
let connection: ChannelModel;

before(async () => {
  fixture = await openAmqpFixture('usher-routing-key-cache-');
  connection = await fixture.connect();
});

after(() => fixture.close());

// 'é' is c3 a9 and 'ê' c3 aa in UTF-8: the same length, one byte apart.
const KEYS = ['key-1', 'key-2', 'kéy', 'kêy', 'k\u00e9y-long-'.repeat(20)];

it('routes each of a burst by its own key, however alike the keys', async () => {
  const channel = await connection.createConfirmChannel();
  for (const exchange of ['rk-a', 'rk-b']) {
    await channel.assertExchange(exchange, 'direct', { durable: false });
    for (const [k, key] of KEYS.entries()) {
      const queue = `${exchange}-q${k}`;
      await channel.assertQueue(queue, { durable: false });
      await channel.bindQueue(queue, exchange, key);
    }
  }

  const rounds = 20;
  for (let round = 0; round < rounds; round++) {
    for (const [k, key] of KEYS.entries()) {
      // The exchange changes every other publish, the key every one.
      const exchange = (round + k) % 2 === 0 ? 'rk-a' : 'rk-b';
      channel.publish(exchange, key, Buffer.from(`${exchange}|${key}`));
    }
  }
  await channel.waitForConfirms();

  for (const exchange of ['rk-a', 'rk-b']) {
    for (const [k, key] of KEYS.entries()) {
      const queue = `${exchange}-q${k}`;
      const bodies: string[] = [];
      for (;;) {
        const message = await channel.get(queue, { noAck: true });
        if (message === false) break;
        bodies.push(message.content.toString());
      }
      assert.equal(bodies.length, rounds / 2, `${queue} got ${bodies.length}`);
      assert.ok(bodies.every((body) => body === `${exchange}|${key}`), `${queue}: ${bodies[0]}`);
    }
  }
  await channel.close();
});

it('hands a consumer every property as it was published', async () => {
  const channel = await connection.createChannel();
  await channel.assertQueue('rk-props', { durable: true });
  const sent = [
    {
      contentType: 'application/json', contentEncoding: 'gzip', correlationId: 'c-1',
      replyTo: 'rk-reply', expiration: '600000', messageId: 'm-ünï', type: 'order',
      appId: 'app', priority: 3, timestamp: 1_700_000_000, persistent: true,
      headers: { 'x-one': 'uno', 'x-two': 2, 'x-nested': { deep: 'yes' } },
    },
    // Few properties, then none: what one message had must not leak into the next.
    { messageId: 'm-2', headers: { only: 'this' } },
    {},
  ];
  for (const [index, properties] of sent.entries()) {
    channel.sendToQueue('rk-props', Buffer.from(`p${index}`), properties);
  }

  const got: ConsumeMessage[] = [];
  await new Promise<void>((resolve) => {
    void channel.consume('rk-props', (message) => {
      if (message === null) return;
      got.push(message);
      channel.ack(message);
      if (got.length === sent.length) resolve();
    });
  });
  const [full, few, none] = got.map((message) => message.properties);
  assert.equal(full.contentType, 'application/json');
  assert.equal(full.contentEncoding, 'gzip');
  assert.equal(full.correlationId, 'c-1');
  assert.equal(full.replyTo, 'rk-reply');
  assert.equal(full.expiration, '600000');
  assert.equal(full.messageId, 'm-ünï');
  assert.equal(full.type, 'order');
  assert.equal(full.appId, 'app');
  assert.equal(full.priority, 3);
  assert.equal(full.timestamp, 1_700_000_000);
  assert.equal(full.deliveryMode, 2);
  assert.equal(full.headers?.['x-one'], 'uno');
  assert.equal(full.headers?.['x-two'], 2);
  assert.deepEqual(full.headers?.['x-nested'], { deep: 'yes' });
  assert.equal(few.messageId, 'm-2');
  assert.equal(few.headers?.only, 'this');
  assert.equal(few.contentType, undefined);
  assert.equal(few.headers?.['x-one'], undefined);
  assert.equal(none.correlationId, undefined);
  assert.equal(none.type, undefined);
  await channel.close();
});
