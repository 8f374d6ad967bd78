// Sender-selected distribution: the CC and BCC headers add routing keys
// to a publish (src/amqp/sender-selected.ts), on publish and when the
// message is dead-lettered.

import assert from 'node:assert/strict';

import type { Chan, Conn, Msg } from './clients.js';
import { type Case, type Ctx, expectChannelError, until } from './harness.js';

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

/**
 * A queue dead-lettering into a direct exchange where `dead` is bound by
 * the queue's name and `deadCopy` by 'copy-key', and a message published
 * to it with CC 'copy-key', rejected: dead-lettered once this returns.
 */
async function dyingWithCc(ctx: Ctx, conn: Conn, ch: Chan) {
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
  return { work, dead, deadCopy };
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
    name: 'CC: an exchange takes its alternate only when none of the keys matched',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [main, alternate] = [ctx.name('cc-main'), ctx.name('cc-alt')];
      const [bound, caught] = [ctx.name('bound'), ctx.name('caught')];
      await ch.exchangeDeclare(alternate, 'fanout');
      await ch.queueDeclare(caught);
      await ch.queueBind(caught, alternate, '');
      await ch.exchangeDeclare(main, 'direct', { args: { 'alternate-exchange': alternate } });
      await ch.queueDeclare(bound);
      await ch.queueBind(bound, main, 'a');
      const pub = await conn.channel({ confirm: true });
      await pub.publish(main, 'a', 'matched', { headers: { CC: ['b'] } });
      await pub.publish(main, 'c', 'unmatched', { headers: { CC: ['d'] } });

      assert.deepEqual((await drain(ch, bound)).map((m) => m.body), ['matched']);
      assert.deepEqual((await drain(ch, caught)).map((m) => m.body), ['unmatched']);
    },
  },
  {
    name: 'CC: an exchange bound to an exchange passes every key on',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [front, back, queue] = [ctx.name('cc-front'), ctx.name('cc-back'), ctx.name('q')];
      await ch.exchangeDeclare(front, 'direct');
      await ch.exchangeDeclare(back, 'direct');
      await ch.exchangeBind(back, front, 'k1');
      await ch.queueDeclare(queue);
      await ch.queueBind(queue, back, 'k2');
      const pub = await conn.channel({ confirm: true });
      await pub.publish(front, 'k1', 'x', { headers: { CC: ['k2'] } });
      assert.deepEqual((await drain(ch, queue)).map((m) => m.body), ['x']);
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
    name: 'CC: a dead-lettered message lists its CC keys in x-death and keeps CC',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const { work, dead } = await dyingWithCc(ctx, conn, ch);
      let deadOnes: Msg[] = [];
      await until('the dead letter', async () => {
        deadOnes = deadOnes.concat(await drain(ch, dead));
        return deadOnes.length > 0;
      }, 3000);
      const deaths = deadOnes[0].properties.headers?.['x-death'] as Array<Record<string, unknown>>;
      assert.deepEqual(deaths[0]['routing-keys'], [work, 'copy-key']);
      assert.deepEqual(deadOnes[0].properties.headers?.CC, ['copy-key']);
    },
  },
  {
    name: 'CC: a dead-lettered message is routed by its CC keys again',
    usherTodo: 'on purpose: CC keys do not route a dead letter, which would reach queues ' +
      'its publisher may not publish to (README, sender-selected distribution)',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const { deadCopy } = await dyingWithCc(ctx, conn, ch);
      await until('the dead-letter copy', async () => (await drain(ch, deadCopy)).length > 0, 3000);
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
      // A CC with no key in it goes too.
      await pub.publish('', work, 'z', { headers: { CC: [], tenant: 'acme' } });

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
      const toRejectToo = await ch.get(work);
      assert.equal(toRejectToo?.body, 'z');
      ch.reject(toRejectToo.deliveryTag, false);
      await until('the second dead letter', async () => {
        deadOnes = deadOnes.concat(await drain(ch, dead));
        return deadOnes.length > 1;
      }, 3000);
      assert.equal(deadOnes[1].properties.headers?.CC, undefined);
      assert.deepEqual(await drain(ch, copy).then((m) => m.map((one) => one.body)), ['y'],
        'the publish copied to the CC queue, not the dead letter');
    },
  },
];
