// Sender-selected distribution: the CC and BCC headers add routing keys
// to a publish (src/amqp/sender-selected.ts), on publish and when the
// message is dead-lettered.

import assert from 'node:assert/strict';

import type { Chan, Msg } from './clients.js';
import { type Case, expectChannelError, until } from './harness.js';

/** The messages in `queue` now, taken with no-ack. */
async function drain(ch: Chan, queue: string): Promise<Msg[]> {
  const taken: Msg[] = [];
  for (let message = await ch.get(queue, { noAck: true }); message !== null;
    message = await ch.get(queue, { noAck: true })) {
    taken.push(message);
  }
  return taken;
}

/** Declares `names` as queues and binds each to `exchange` by its own name. */
async function boundByName(ch: Chan, exchange: string, names: string[]): Promise<void> {
  for (const name of names) {
    await ch.queueDeclare(name);
    await ch.queueBind(name, exchange, name);
  }
}

export const senderSelectedCases: Case[] = [
  {
    name: 'CC: a direct exchange routes by each CC key too, and CC stays in the message',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const exchange = ctx.name('cc-direct');
      const [to, copy, other] = [ctx.name('to'), ctx.name('copy'), ctx.name('other')];
      await ch.exchangeDeclare(exchange, 'direct');
      await boundByName(ch, exchange, [to, copy, other]);
      const pub = await conn.channel({ confirm: true });
      await pub.publish(exchange, to, 'x', { headers: { CC: [copy], tenant: 'acme' } });

      const [direct] = await drain(ch, to);
      const [copied] = await drain(ch, copy);
      assert.equal(direct?.body, 'x');
      assert.equal(copied?.body, 'x');
      assert.equal(copied.routingKey, to, 'delivered with the key it was published with');
      assert.deepEqual(copied.properties.headers?.CC, [copy]);
      assert.equal(copied.properties.headers?.tenant, 'acme');
      assert.deepEqual(await drain(ch, other), []);
    },
  },
  {
    name: 'BCC: routes like CC and is taken out of the message',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const exchange = ctx.name('bcc-direct');
      const [to, hidden] = [ctx.name('to'), ctx.name('hidden')];
      await ch.exchangeDeclare(exchange, 'direct');
      await boundByName(ch, exchange, [to, hidden]);
      const pub = await conn.channel({ confirm: true });
      await pub.publish(exchange, to, 'x', { headers: { BCC: [hidden], tenant: 'acme' } });

      for (const queue of [to, hidden]) {
        const [message] = await drain(ch, queue);
        assert.equal(message?.body, 'x', queue);
        assert.equal(message.properties.headers?.BCC, undefined, `BCC reached ${queue}`);
        assert.equal(message.properties.headers?.tenant, 'acme');
      }
    },
  },
  {
    name: 'CC: topic patterns match each key, and a queue two keys reach gets one copy',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const exchange = ctx.name('cc-topic');
      const [tickets, all] = [ctx.name('tickets'), ctx.name('all')];
      await ch.exchangeDeclare(exchange, 'topic');
      await ch.queueDeclare(tickets);
      await ch.queueBind(tickets, exchange, 'ticket.*');
      await ch.queueDeclare(all);
      await ch.queueBind(all, exchange, '#');
      const pub = await conn.channel({ confirm: true });
      await pub.publish(exchange, 'mail.sent', 'x', {
        headers: { CC: ['ticket.sold', 'ticket.paid'] },
      });

      assert.equal((await drain(ch, tickets)).length, 1);
      assert.equal((await drain(ch, all)).length, 1);
    },
  },
  {
    name: 'CC and BCC: the default exchange sends to each named queue',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [a, b, c] = [ctx.name('a'), ctx.name('b'), ctx.name('c')];
      for (const queue of [a, b, c]) await ch.queueDeclare(queue);
      const pub = await conn.channel({ confirm: true });
      await pub.publish('', a, 'x', { headers: { CC: [b], BCC: [c, 'no-such-queue'] } });
      for (const queue of [a, b, c]) assert.equal((await drain(ch, queue)).length, 1, queue);
    },
  },
  {
    name: 'CC: entries that are not strings are skipped',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [a, b] = [ctx.name('a'), ctx.name('b')];
      for (const queue of [a, b]) await ch.queueDeclare(queue);
      const pub = await conn.channel({ confirm: true });
      await pub.publish('', a, 'x', { headers: { CC: [7, b, true] } });
      assert.equal((await drain(ch, a)).length, 1);
      assert.equal((await drain(ch, b)).length, 1);
    },
  },
  {
    name: 'CC that is not an array refuses the publish (406); the connection goes on',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('cc-text');
      await ch.queueDeclare(queue);
      const pub = await conn.channel({ confirm: true });
      await expectChannelError(conn, pub, 406, () =>
        pub.publish('', queue, 'x', { headers: { CC: queue } }));

      const again = await conn.channel({ confirm: true });
      await again.publish('', queue, 'y');
      assert.deepEqual((await drain(ch, queue)).map((m) => m.body), ['y']);
    },
  },
  {
    name: 'CC: a dead-lettered message is routed by its CC keys again, listed in x-death',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const exchange = ctx.name('cc-dlx');
      const [work, dead, deadCopy] = [ctx.name('work'), ctx.name('dead'), ctx.name('dead-copy')];
      await ch.exchangeDeclare(exchange, 'direct');
      await ch.queueDeclare(dead);
      await ch.queueBind(dead, exchange, work);
      await ch.queueDeclare(deadCopy);
      await ch.queueBind(deadCopy, exchange, 'copy-key');
      await ch.queueDeclare(work, { args: { 'x-dead-letter-exchange': exchange } });
      const pub = await conn.channel({ confirm: true });
      await pub.publish('', work, 'x', { headers: { CC: ['copy-key'] } });

      const got = await ch.get(work);
      assert.ok(got !== null);
      ch.reject(got.deliveryTag, false);
      let copies: Msg[] = [];
      await until('the dead-letter copy', async () => {
        copies = copies.concat(await drain(ch, deadCopy));
        return copies.length > 0;
      }, 3000);
      const [deadOne] = await drain(ch, dead);
      assert.equal(deadOne?.body, 'x');
      const deaths = copies[0].properties.headers?.['x-death'] as Array<Record<string, unknown>>;
      assert.deepEqual(deaths[0]['routing-keys'], [work, 'copy-key']);
      assert.deepEqual(copies[0].properties.headers?.CC, ['copy-key']);
    },
  },
  {
    name: 'CC: dead-lettered with x-dead-letter-routing-key, CC is dropped',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [work, dead, copy] = [ctx.name('work'), ctx.name('dead'), ctx.name('copy')];
      await ch.queueDeclare(dead);
      await ch.queueDeclare(copy);
      await ch.queueDeclare(work, { args: {
        'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dead,
      } });
      const pub = await conn.channel({ confirm: true });
      await pub.publish('', work, 'y', { headers: { CC: [copy], tenant: 'acme' } });

      const toReject = await ch.get(work);
      assert.ok(toReject !== null);
      ch.reject(toReject.deliveryTag, false);
      let deadOnes: Msg[] = [];
      await until('the dead letter', async () => {
        deadOnes = deadOnes.concat(await drain(ch, dead));
        return deadOnes.length > 0;
      }, 3000);
      assert.equal(deadOnes[0].body, 'y');
      assert.equal(deadOnes[0].properties.headers?.CC, undefined);
      assert.equal(deadOnes[0].properties.headers?.tenant, 'acme');
      assert.deepEqual(await drain(ch, copy).then((m) => m.map((one) => one.body)), ['y'],
        'the publish copied to the CC queue, not the dead letter');
    },
  },
];
