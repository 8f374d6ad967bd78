// Consumer priorities (the consumer argument x-priority), checked against
// RabbitMQ: while a consumer of higher priority has room under its
// prefetch it takes every message; a lower one takes what it leaves.

import assert from 'node:assert/strict';

import { type Case, consumeInto, expectChannelError, quiet } from './harness.js';

export const consumerPriorityCases: Case[] = [
  {
    name: 'x-priority: the higher consumer takes messages while it has room, the lower the rest',
    async run(ctx) {
      const { conn, ch: setup } = await ctx.open({ confirm: true });
      const queue = ctx.name('cprio');
      await setup.queueDeclare(queue);
      const high = await conn.channel();
      await high.qos(2);
      const low = await conn.channel();
      await low.qos(10);
      // The lower one first: the order they came in must not matter.
      const lows = await consumeInto(low, queue, { args: { 'x-priority': 0 } });
      const highs = await consumeInto(high, queue, { args: { 'x-priority': 10 } });
      for (let i = 1; i <= 5; i++) await setup.publish('', queue, String(i));
      await lows.take(3);
      await quiet();
      assert.deepEqual(highs.bodies(), ['1', '2']);
      assert.deepEqual(lows.bodies(), ['3', '4', '5']);

      // Room again at the top: the next message goes there.
      high.ack(highs.messages[0].deliveryTag);
      await quiet();
      await setup.publish('', queue, '6');
      await highs.take(3);
      assert.deepEqual(lows.bodies(), ['3', '4', '5']);
    },
  },
  {
    name: 'x-priority: consumers of one priority take turns; negative priorities are allowed',
    async run(ctx) {
      const { conn, ch: setup } = await ctx.open({ confirm: true });
      const queue = ctx.name('cprio');
      await setup.queueDeclare(queue);
      const one = await conn.channel();
      const two = await conn.channel();
      const first = await consumeInto(one, queue, { noAck: true, args: { 'x-priority': -5 } });
      const second = await consumeInto(two, queue, { noAck: true, args: { 'x-priority': -5 } });
      for (let i = 1; i <= 4; i++) await setup.publish('', queue, String(i));
      await first.take(2);
      await second.take(2);
      assert.equal(first.messages.length + second.messages.length, 4);
    },
  },
  {
    name: 'x-priority that is not an integer is refused (406)',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('cprio');
      await ch.queueDeclare(queue);
      await expectChannelError(conn, ch, 406,
        () => ch.consume(queue, { args: { 'x-priority': 'high' } }, () => {}));
    },
  },
];
