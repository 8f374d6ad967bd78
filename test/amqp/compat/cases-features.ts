// Queue arguments beyond the basics, checked against RabbitMQ: x-expires,
// x-single-active-consumer, dead-lettering through a named exchange, and
// the full x-death entry RabbitMQ 3.10 writes.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Chan, Msg } from './clients.js';
import { fill, queueExists } from './cases-topology.js';
import { type Case, type Ctx, consumeInto, expectChannelError, quiet, until } from './harness.js';

async function getSoon(ch: Chan, queue: string, ms = 3000): Promise<Msg> {
  let message: Msg | null = null;
  await until(`a message in ${queue}`, async () => {
    message = await ch.get(queue, { noAck: true });
    return message !== null;
  }, ms);
  return message!;
}

type Death = Record<string, unknown> & { 'routing-keys': string[] };

function deathsOf(message: Msg): Death[] {
  const deaths = message.properties.headers?.['x-death'];
  assert.ok(Array.isArray(deaths), `no x-death in ${JSON.stringify(message.properties.headers)}`);
  return deaths as Death[];
}

/**
 * A retry loop's queues: `work`, and `wait`, whose messages expire after
 * 50 ms and are dead-lettered into `work`. Both names, `wait` first.
 */
async function delayQueue(ctx: Ctx, ch: Chan): Promise<[string, string]> {
  const [wait, work] = [ctx.name('wait'), ctx.name('work')];
  await ch.queueDeclare(work);
  await ch.queueDeclare(wait, { args: {
    'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': work, 'x-message-ttl': 50,
  } });
  return [wait, work];
}

export const featureCases: Case[] = [
  // --- x-expires ------------------------------------------------------------
  {
    name: 'x-expires: an unused queue is deleted, messages and all',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('expires');
      await ch.queueDeclare(queue, { args: { 'x-expires': 300 } });
      await fill(conn, queue, ['a']);
      // Not polled: a passive declare counts as use and would keep it.
      await sleep(1000);
      assert.equal(await queueExists(conn, queue), false);
    },
  },
  {
    name: 'x-expires: a consumer keeps the queue; it expires after the consumer leaves',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('expires');
      await ch.queueDeclare(queue, { args: { 'x-expires': 200 } });
      const inbox = await consumeInto(ch, queue, { noAck: true });
      await sleep(600);
      assert.equal(await queueExists(conn, queue), true);
      await ch.cancel(inbox.tag);
      await sleep(800);
      assert.equal(await queueExists(conn, queue), false);
    },
  },
  {
    name: 'x-expires: basic.get and declares (passive too) count as use',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('expires');
      // Gaps of 0.4x the expiry: a loaded machine may stall one by 900 ms
      // (at 500 ms expiry and 200 ms gaps, one 300 ms stall at load 8.7
      // deleted the queue). The uses together span 1.6x the expiry.
      const expiresMs = 1500;
      await ch.queueDeclare(queue, { args: { 'x-expires': expiresMs } });
      for (let i = 0; i < 4; i++) {
        await sleep(expiresMs * 0.4);
        if (i === 0) await ch.get(queue);
        else if (i === 1) await ch.queueDeclare(queue, { args: { 'x-expires': expiresMs } });
        else await ch.queueDeclare(queue, { passive: true });
      }
      assert.equal(await queueExists(conn, queue), true);
    },
  },
  {
    name: 'x-expires: 0 and a redeclare with another value are 406',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      await expectChannelError(conn, ch, 406,
        () => ch.queueDeclare(ctx.name('zero'), { args: { 'x-expires': 0 } }));
      const queue = ctx.name('expires');
      const ch2 = await conn.channel();
      await ch2.queueDeclare(queue, { args: { 'x-expires': 60000 } });
      await expectChannelError(conn, ch2, 406,
        () => ch2.queueDeclare(queue, { args: { 'x-expires': 30000 } }));
    },
  },

  // --- x-single-active-consumer --------------------------------------------
  {
    name: 'x-single-active-consumer: only the first consumer gets messages; the next takes over',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('sac');
      await ch.queueDeclare(queue, { args: { 'x-single-active-consumer': true } });
      const first = await consumeInto(ch, queue, { noAck: true });
      const ch2 = await conn.channel();
      const second = await consumeInto(ch2, queue, { noAck: true });
      await fill(conn, queue, ['1', '2', '3', '4']);
      await first.take(4);
      await quiet();
      assert.deepEqual(second.bodies(), []);
      await ch.cancel(first.tag);
      await fill(conn, queue, ['5', '6']);
      assert.deepEqual((await second.take(2)).map((m) => m.body), ['5', '6']);
      assert.deepEqual(first.bodies(), ['1', '2', '3', '4']);
    },
  },
  {
    name: 'x-single-active-consumer: when the active consumer\'s connection goes, the next gets its unacked',
    async run(ctx) {
      const { ch } = await ctx.open();
      const queue = ctx.name('sac');
      await ch.queueDeclare(queue, { args: { 'x-single-active-consumer': true } });
      const other = await ctx.connect();
      const active = await consumeInto(await other.channel(), queue);
      const waiting = await consumeInto(ch, queue, { noAck: true });
      await fill(other, queue, ['a', 'b']);
      await active.take(2);
      await quiet();
      assert.deepEqual(waiting.bodies(), []);
      await other.close();
      const got = await waiting.take(2);
      assert.deepEqual(got.map((m) => m.body).sort(), ['a', 'b']);
      assert.ok(got.every((m) => m.redelivered));
    },
  },
  {
    // Woken before its messages were back, the next consumer took the ones
    // behind them first (breaker session).
    name: 'x-single-active-consumer: the next consumer gets the unacked ones first, in order',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('sac-order');
      await ch.queueDeclare(queue, { args: { 'x-single-active-consumer': true } });
      const bodies = Array.from({ length: 12 }, (_, i) => `m${i}`);
      await fill(conn, queue, bodies);

      const activeCh = await conn.channel();
      await activeCh.qos(3);
      const active = await consumeInto(activeCh, queue);
      await active.take(3);
      const waitingCh = await conn.channel();
      await waitingCh.qos(6);
      const waiting = await consumeInto(waitingCh, queue);
      await quiet();
      await activeCh.close();

      const got = await waiting.take(6);
      assert.deepEqual(got.map((m) => m.body), bodies.slice(0, 6));
      assert.deepEqual(got.map((m) => m.redelivered), [true, true, true, false, false, false]);
    },
  },
  {
    name: 'x-single-active-consumer: a non-boolean value is 406',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      await expectChannelError(conn, ch, 406,
        () => ch.queueDeclare(ctx.name('sac'), { args: { 'x-single-active-consumer': 'yes' } }));
    },
  },

  // --- dead-letter exchanges -----------------------------------------------
  {
    name: 'dead-letter exchange: without a dead-letter key the message keeps its own routing key',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [source, dlx, queue, dlq] =
        [ctx.name('src'), ctx.name('dlx'), ctx.name('work'), ctx.name('dlq')];
      await ch.exchangeDeclare(source, 'topic');
      await ch.exchangeDeclare(dlx, 'topic');
      await ch.queueDeclare(dlq);
      await ch.queueBind(dlq, dlx, 'orders.#');
      await ch.queueDeclare(queue, { args: { 'x-dead-letter-exchange': dlx } });
      await ch.queueBind(queue, source, 'orders.*');
      const pub = await conn.channel({ confirm: true });
      await pub.publish(source, 'orders.eu', 'y', { messageId: 'm1' });
      const message = await ch.get(queue);
      ch.reject(message!.deliveryTag, false);
      const dead = await getSoon(ch, dlq);
      assert.equal(dead.body, 'y');
      assert.equal(dead.exchange, dlx);
      assert.equal(dead.routingKey, 'orders.eu');
      const [death] = deathsOf(dead);
      assert.equal(death.exchange, source);
      assert.deepEqual(death['routing-keys'], ['orders.eu']);
      assert.equal(death.queue, queue);
      assert.equal(death.reason, 'rejected');
      assert.equal(dead.properties.headers?.['x-first-death-exchange'], source);
    },
  },
  {
    name: 'dead-letter exchange: a fanout puts the dead message in every bound queue',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [dlx, queue, a, b] = [ctx.name('dlx'), ctx.name('work'), ctx.name('a'), ctx.name('b')];
      await ch.exchangeDeclare(dlx, 'fanout');
      for (const dlq of [a, b]) {
        await ch.queueDeclare(dlq);
        await ch.queueBind(dlq, dlx, '');
      }
      await ch.queueDeclare(queue, { args: { 'x-dead-letter-exchange': dlx, 'x-message-ttl': 50 } });
      await fill(conn, queue, ['late']);
      for (const dlq of [a, b]) {
        const dead = await getSoon(ch, dlq);
        assert.equal(dead.body, 'late');
        assert.equal(deathsOf(dead)[0].reason, 'expired');
      }
    },
  },
  {
    name: 'dead-letter exchange that does not exist: the message is dropped',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('work');
      await ch.queueDeclare(queue, { args: { 'x-dead-letter-exchange': ctx.name('missing') } });
      await fill(conn, queue, ['x']);
      const message = await ch.get(queue);
      ch.reject(message!.deliveryTag, false);
      await quiet();
      assert.equal((await ch.queueDeclare(queue, { passive: true })).messageCount, 0);
    },
  },
  {
    name: 'x-dead-letter-routing-key without x-dead-letter-exchange is 406',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      await expectChannelError(conn, ch, 406, () => ch.queueDeclare(ctx.name('work'),
        { args: { 'x-dead-letter-routing-key': 'k' } }));
    },
  },
  {
    name: 'dead-lettering: a queue whose messages expire into itself drops them (cycle)',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('self');
      await ch.queueDeclare(queue, { args: {
        'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': queue, 'x-message-ttl': 50,
      } });
      await fill(conn, queue, ['x']);
      await sleep(400);
      assert.equal((await ch.queueDeclare(queue, { passive: true })).messageCount, 0);
    },
  },
  {
    name: 'dead-lettering: the per-message expiration moves to x-death original-expiration',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [queue, dlq] = [ctx.name('work'), ctx.name('dlq')];
      await ch.queueDeclare(dlq);
      await ch.queueDeclare(queue,
        { args: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq } });
      const pub = await conn.channel({ confirm: true });
      await pub.publish('', queue, 'x', { expiration: '60' });
      const dead = await getSoon(ch, dlq);
      assert.equal(dead.properties.expiration, undefined);
      const [death] = deathsOf(dead);
      assert.equal(death.reason, 'expired');
      assert.equal(death['original-expiration'], '60');
      assert.deepEqual(Object.keys(death).sort(), ['count', 'exchange', 'original-expiration',
        'queue', 'reason', 'routing-keys', 'time']);
    },
  },
  {
    // A worker that retries through a delay queue republishes what it got,
    // x-death and all, and stops after N by its count (new-user session:
    // Usher counted 1 every time, and the worker retried for ever).
    name: 'dead-lettering: x-death a message was published with counts on',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [wait, work] = await delayQueue(ctx, ch);
      const pub = await conn.channel({ confirm: true });
      await pub.publish('', wait, 'retry', { headers: {
        'x-death': [
          { count: 5, reason: 'expired', queue: wait, exchange: '', 'routing-keys': [wait] },
          { count: 2, reason: 'rejected', queue: 'elsewhere', exchange: '',
            'routing-keys': ['elsewhere'] },
        ],
        'x-first-death-queue': 'elsewhere',
      } });
      const dead = await getSoon(ch, work);
      assert.deepEqual(deathsOf(dead).map((d) => [d.queue, d.reason, Number(d.count)]),
        [[wait, 'expired', 6], ['elsewhere', 'rejected', 2]]);
      assert.equal(dead.properties.headers?.['x-first-death-queue'], 'elsewhere');
    },
  },
  {
    name: 'dead-lettering: a queue and reason published twice in x-death is kept once, as first listed',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [wait, work] = await delayQueue(ctx, ch);
      const pub = await conn.channel({ confirm: true });
      await pub.publish('', wait, 'retry', { headers: {
        'x-death': [
          { count: 2, reason: 'rejected', queue: 'elsewhere', exchange: 'e1', 'routing-keys': ['a'] },
          { count: 3, reason: 'rejected', queue: 'elsewhere', exchange: 'e2', 'routing-keys': ['b'] },
        ],
      } });
      const dead = await getSoon(ch, work);
      assert.deepEqual(
        deathsOf(dead).map((d) => [d.queue, d.reason, Number(d.count), d.exchange]),
        [[wait, 'expired', 1, ''], ['elsewhere', 'rejected', 2, 'e1']]);
    },
  },
  {
    name: 'dead-lettering: the cycle check reads the x-death a message was published with',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [wait, work] = await delayQueue(ctx, ch);
      const pub = await conn.channel({ confirm: true });
      // It claims to have expired from `work` before: back there, with no
      // rejection since, is a cycle, and it is dropped.
      await pub.publish('', wait, 'cycle', { headers: {
        'x-death': [{ count: 1, reason: 'expired', queue: work, exchange: '', 'routing-keys': [work] }],
      } });
      // Expires after it, into the same queue: once it is there, the
      // first has been dealt with.
      await pub.publish('', wait, 'control');
      const arrived = await getSoon(ch, work);
      assert.equal(arrived.body, 'control');
      assert.equal(await ch.get(work, { noAck: true }), null);
    },
  },
];
