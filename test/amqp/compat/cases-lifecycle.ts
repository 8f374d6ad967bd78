// Message lifetimes: TTL, dead-lettering and x-death, delivery limits;
// and the queue arguments and classes where Usher differs on purpose.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Chan, Msg } from './clients.js';
import { fill } from './cases-topology.js';
import { type Case, consumeInto, expectChannelError, until } from './harness.js';

/** Polls basic.get until a message comes, for at most `ms`. */
export async function getSoon(
  ch: Chan,
  queue: string,
  { noAck = true, ms = 3000 }: { noAck?: boolean; ms?: number } = {},
): Promise<Msg> {
  let message: Msg | null = null;
  await until(`a message in ${queue}`, async () => {
    message = await ch.get(queue, { noAck });
    return message !== null;
  }, ms);
  return message!;
}

export interface Death {
  count: number;
  reason: string;
  queue: string;
  exchange: string;
  'routing-keys': string[];
  time: { timestamp: number };
}

export function deathsOf(message: Msg): Death[] {
  const deaths = message.properties.headers?.['x-death'];
  assert.ok(Array.isArray(deaths), `no x-death in ${JSON.stringify(message.properties.headers)}`);
  return deaths as Death[];
}

function assertRecent(time: { timestamp: number }): void {
  const now = Date.now() / 1000;
  assert.ok(Math.abs(time.timestamp - now) < 120, `x-death time ${JSON.stringify(time)}`);
}

/** A queue that dead-letters through the default exchange to `dlq`. */
export const dlArgs = (dlq: string, extra: Record<string, unknown> = {}) =>
  ({ 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq, ...extra });

export const lifecycleCases: Case[] = [
  {
    name: 'x-message-ttl: an expired message is not delivered',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('ttl');
      await ch.queueDeclare(queue, { args: { 'x-message-ttl': 100 } });
      await fill(conn, queue, ['a']);
      await sleep(300);
      assert.equal(await ch.get(queue), null);
    },
  },
  {
    name: 'x-message-ttl 0: a waiting consumer gets every message; without one they are dead-lettered',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [queue, dlq] = [ctx.name('ttl0'), ctx.name('ttl0-dlq')];
      await ch.queueDeclare(dlq);
      await ch.queueDeclare(queue, { args: dlArgs(dlq, { 'x-message-ttl': 0 }) });
      const pub = await conn.channel({ confirm: true });

      // "Deliver now or drop": the write that makes it durable is not
      // time in the queue (a Java user's consumer got 1 of 4 on Usher).
      const consumer = await conn.channel();
      const inbox = await consumeInto(consumer, queue, { noAck: true });
      for (let i = 0; i < 10; i++) await pub.publish('', queue, `m${i}`);
      await inbox.take(10);
      await consumer.cancel(inbox.tag);

      await pub.publish('', queue, 'nobody');
      await until('the dead letter', async () =>
        (await ch.queueDeclare(dlq, { passive: true })).messageCount === 1);
      assert.equal((await ch.queueDeclare(queue, { passive: true })).messageCount, 0);
    },
  },
  {
    name: 'expiration: a message expires on its own TTL; others stay',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('expiration');
      await ch.queueDeclare(queue);
      const pub = await conn.channel({ confirm: true });
      await pub.publish('', queue, 'short', { expiration: '100' });
      await pub.publish('', queue, 'long', { expiration: '60000' });
      await sleep(300);
      assert.equal((await ch.get(queue, { noAck: true }))?.body, 'long');
      assert.equal(await ch.get(queue), null);
    },
  },
  {
    name: 'classic queues have no delivery limit: 12 requeues later the message is there',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('limit');
      await ch.queueDeclare(queue);
      await fill(conn, queue, ['a']);
      for (let delivery = 1; delivery <= 13; delivery++) {
        const message = await getSoon(ch, queue, { noAck: false, ms: 1000 }).catch(() => null);
        assert.ok(message !== null, `gone after ${delivery - 1} deliveries`);
        ch.nack(message.deliveryTag, false, true);
      }
    },
  },
  {
    name: 'dead-lettering on reject: the dead-letter queue gets it with x-death',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [queue, dlq] = [ctx.name('work'), ctx.name('dlq')];
      await ch.queueDeclare(dlq);
      await ch.queueDeclare(queue, { args: dlArgs(dlq) });
      const pub = await conn.channel({ confirm: true });
      await pub.publish('', queue, 'bad', { messageId: 'm1', headers: { tenant: 'acme' } });
      const message = await ch.get(queue);
      ch.reject(message!.deliveryTag, false);
      const dead = await getSoon(ch, dlq);
      assert.equal(dead.body, 'bad');
      assert.equal(dead.properties.messageId, 'm1');
      assert.equal(dead.properties.headers?.tenant, 'acme');
      const [death, ...more] = deathsOf(dead);
      assert.equal(more.length, 0);
      assert.deepEqual(Object.keys(death).sort(),
        ['count', 'exchange', 'queue', 'reason', 'routing-keys', 'time']);
      assert.equal(death.count, 1);
      assert.equal(death.reason, 'rejected');
      assert.equal(death.queue, queue);
      assert.equal(death.exchange, '');
      assert.deepEqual(death['routing-keys'], [queue]);
      assertRecent(death.time);
    },
  },
  {
    name: 'dead-lettering: delivered from the DLQ with exchange \'\' and the dead-letter key',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [exchange, queue, dlq] = [ctx.name('x'), ctx.name('work'), ctx.name('dlq')];
      await ch.exchangeDeclare(exchange, 'direct');
      await ch.queueDeclare(dlq);
      await ch.queueDeclare(queue, { args: dlArgs(dlq) });
      await ch.queueBind(queue, exchange, 'orders');
      await (await conn.channel({ confirm: true })).publish(exchange, 'orders', 'bad');
      ch.reject((await ch.get(queue))!.deliveryTag, false);
      const dead = await getSoon(ch, dlq);
      assert.equal(dead.exchange, '');
      assert.equal(dead.routingKey, dlq);
    },
  },
  {
    name: 'dead-lettering: x-death keeps the exchange and routing key the message came by',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [exchange, queue, dlq] = [ctx.name('x'), ctx.name('work'), ctx.name('dlq')];
      await ch.exchangeDeclare(exchange, 'direct');
      await ch.queueDeclare(dlq);
      await ch.queueDeclare(queue, { args: dlArgs(dlq) });
      await ch.queueBind(queue, exchange, 'orders');
      await (await conn.channel({ confirm: true })).publish(exchange, 'orders', 'bad');
      ch.reject((await ch.get(queue))!.deliveryTag, false);
      const [death] = deathsOf(await getSoon(ch, dlq));
      assert.equal(death.exchange, exchange);
      assert.deepEqual(death['routing-keys'], ['orders']);
    },
  },
  {
    name: 'dead-lettering: x-first-death-queue, -reason and -exchange headers',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [queue, dlq] = [ctx.name('work'), ctx.name('dlq')];
      await ch.queueDeclare(dlq);
      await ch.queueDeclare(queue, { args: dlArgs(dlq) });
      await fill(conn, queue, ['bad']);
      ch.reject((await ch.get(queue))!.deliveryTag, false);
      const headers = (await getSoon(ch, dlq)).properties.headers ?? {};
      assert.equal(headers['x-first-death-queue'], queue);
      assert.equal(headers['x-first-death-reason'], 'rejected');
      assert.equal(headers['x-first-death-exchange'], '');
    },
  },
  {
    name: 'dead-lettering adds x-death and x-first-death-* and no other header',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [queue, dlq] = [ctx.name('work'), ctx.name('dlq')];
      await ch.queueDeclare(dlq);
      await ch.queueDeclare(queue, { args: dlArgs(dlq) });
      await (await conn.channel({ confirm: true })).publish('', queue, 'x', { headers: { mine: 1 } });
      ch.reject((await ch.get(queue))!.deliveryTag, false);
      const headers = (await getSoon(ch, dlq)).properties.headers ?? {};
      const added = Object.keys(headers)
        .filter((name) => name !== 'mine' && !/^x-(first-)?death/.test(name));
      assert.deepEqual(added, []);
    },
  },
  {
    name: 'dead-lettering through a named exchange',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [dlx, queue, dlq] = [ctx.name('dlx'), ctx.name('work'), ctx.name('dlq')];
      await ch.exchangeDeclare(dlx, 'direct');
      await ch.queueDeclare(dlq);
      await ch.queueBind(dlq, dlx, 'dead');
      await ch.queueDeclare(queue,
        { args: { 'x-dead-letter-exchange': dlx, 'x-dead-letter-routing-key': 'dead' } });
      await fill(conn, queue, ['x']);
      ch.reject((await ch.get(queue))!.deliveryTag, false);
      const dead = await getSoon(ch, dlq);
      assert.equal(dead.exchange, dlx);
      assert.equal(dead.routingKey, 'dead');
      assert.equal(deathsOf(dead)[0].queue, queue);
    },
  },
  {
    name: 'dead-lettering on expiry: x-death reason expired',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [queue, dlq] = [ctx.name('ttl'), ctx.name('dlq')];
      await ch.queueDeclare(dlq);
      await ch.queueDeclare(queue, { args: dlArgs(dlq, { 'x-message-ttl': 50 }) });
      await fill(conn, queue, ['late']);
      const dead = await getSoon(ch, dlq);
      assert.equal(dead.body, 'late');
      const [death] = deathsOf(dead);
      assert.equal(death.reason, 'expired');
      assert.equal(death.queue, queue);
      assert.equal(death.count, 1);
    },
  },
  {
    name: 'dead-lettering in a loop: x-death counts each queue and reason',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [work, wait] = [ctx.name('work'), ctx.name('wait')];
      // `wait` holds a rejected message for 20 ms and sends it back.
      await ch.queueDeclare(wait, { args: dlArgs(work, { 'x-message-ttl': 20 }) });
      await ch.queueDeclare(work, { args: dlArgs(wait) });
      await fill(conn, work, ['loop']);
      let message = await getSoon(ch, work, { noAck: false });
      for (let round = 1; round <= 2; round++) {
        ch.reject(message.deliveryTag, false);
        message = await getSoon(ch, work, { noAck: false });
        const deaths = deathsOf(message);
        assert.deepEqual(deaths.map((d) => [d.queue, d.reason, d.count]),
          [[wait, 'expired', round], [work, 'rejected', round]]);
      }
      ch.ack(message.deliveryTag);
    },
  },
  {
    name: 'dead-letter queue declared after the queue naming it, with arguments of its own',
    async run(ctx) {
      const { ch } = await ctx.open();
      const [queue, dlq] = [ctx.name('work'), ctx.name('dlq')];
      await ch.queueDeclare(queue, { args: dlArgs(dlq) });
      await ch.queueDeclare(dlq, { args: { 'x-message-ttl': 60000 } });
    },
  },
  {
    name: 'queue arguments Usher lacks are refused with 406',
    onlyTarget: {
      target: 'usher',
      reason: 'Usher refuses, at declare, arguments it does not implement (README)',
    },
    async run(ctx) {
      const conn = await ctx.connect();
      for (const args of UNSUPPORTED_BY_USHER) {
        const ch = await conn.channel();
        const closed = await expectChannelError(conn, ch, 406,
          () => ch.queueDeclare(ctx.name('args'), { args }));
        assert.match(closed.text, /not supported by Usher/);
      }
    },
  },
  {
    name: 'x-max-length with x-overflow reject-publish: a confirmed publish past it is nacked',
    async run(ctx) {
      const { ch } = await ctx.open({ confirm: true });
      const queue = ctx.name('maxlen-reject');
      await ch.queueDeclare(queue, { args: { 'x-max-length': 2, 'x-overflow': 'reject-publish' } });
      await ch.publish('', queue, 'a');
      await ch.publish('', queue, 'b');
      await assert.rejects(ch.publish('', queue, 'c'), 'the third publish is nacked');
      const bodies = [(await getSoon(ch, queue)).body, (await getSoon(ch, queue)).body];
      assert.deepEqual(bodies, ['a', 'b']);
      assert.equal(await ch.get(queue), null);
    },
  },
  {
    name: 'x-max-length-bytes refuses by body bytes',
    async run(ctx) {
      const { ch } = await ctx.open({ confirm: true });
      const queue = ctx.name('maxbytes');
      await ch.queueDeclare(queue, {
        args: { 'x-max-length-bytes': 10, 'x-overflow': 'reject-publish' },
      });
      await ch.publish('', queue, '123456');
      await assert.rejects(ch.publish('', queue, '12345'), 'over 10 bytes: nacked');
      await ch.publish('', queue, '1234');
      assert.equal((await getSoon(ch, queue)).body, '123456');
      assert.equal((await getSoon(ch, queue)).body, '1234');
    },
  },
  {
    name: 'x-max-length drop-head (the default) dead-letters the oldest with reason maxlen',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('maxlen-drop');
      const dlq = ctx.name('maxlen-drop-dlq');
      await ch.queueDeclare(dlq);
      await ch.queueDeclare(queue, { args: dlArgs(dlq, { 'x-max-length': 2 }) });
      await fill(conn, queue, ['a']);
      await fill(conn, queue, ['b']);
      await fill(conn, queue, ['c']);
      const dead = await getSoon(ch, dlq);
      assert.equal(dead.body, 'a');
      assert.equal(deathsOf(dead)[0].reason, 'maxlen');
      assert.equal((await getSoon(ch, queue)).body, 'b');
      assert.equal((await getSoon(ch, queue)).body, 'c');
    },
  },
  {
    name: 'x-max-length counts ready messages only, not unacked ones',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('maxlen-unacked');
      await ch.queueDeclare(queue, { args: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
      await fill(conn, queue, ['a']);
      const leased = await getSoon(ch, queue, { noAck: false });
      assert.equal(leased.body, 'a');
      await fill(conn, queue, ['b']);
      assert.equal((await getSoon(ch, queue)).body, 'b');
    },
  },
  {
    name: 'queue arguments Usher lacks: RabbitMQ takes them',
    onlyTarget: { target: 'rabbitmq', reason: 'Usher refuses them with 406 (README, AMQP section)' },
    async run(ctx) {
      const { ch } = await ctx.open();
      for (const args of UNSUPPORTED_BY_USHER) {
        await ch.queueDeclare(ctx.name('args'), { args });
      }
    },
  },
];

// RabbitMQ ignores an argument it does not know; Usher refuses it, so
// that a feature it lacks is not lost in silence. Its storage hints
// (x-queue-mode and the like) it takes: cases-topology.ts.
const UNSUPPORTED_BY_USHER: Array<Record<string, unknown>> = [
  { 'x-custom-argument': 'anything' },
];

