// x-overflow reject-publish-dlx: a publish past x-max-length or
// x-max-length-bytes is refused (basic.nack under confirms) as with
// reject-publish, and the refused message is dead-lettered through the
// queue's dead-letter exchange with x-death reason `maxlen`.

import assert from 'node:assert/strict';

import { fill } from './cases-topology.js';
import { deathsOf, dlArgs, getSoon } from './cases-lifecycle.js';
import { type Case, expectChannelError, quiet } from './harness.js';

const DLX = { 'x-overflow': 'reject-publish-dlx' };

export const overflowCases: Case[] = [
  {
    name: 'reject-publish-dlx: a confirmed publish past x-max-length is nacked and dead-lettered',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [queue, dlq] = [ctx.name('maxlen-dlx'), ctx.name('maxlen-dlx-dlq')];
      await ch.queueDeclare(dlq);
      await ch.queueDeclare(queue, { args: dlArgs(dlq, { 'x-max-length': 1, ...DLX }) });
      const pub = await conn.channel({ confirm: true });
      await pub.publish('', queue, 'a');
      await assert.rejects(pub.publish('', queue, 'b', { messageId: 'm-b' }),
        'the second publish is nacked');

      const dead = await getSoon(ch, dlq);
      assert.equal(dead.body, 'b');
      assert.equal(dead.properties.messageId, 'm-b');
      assert.equal(dead.exchange, '');
      assert.equal(dead.routingKey, dlq);
      const [death, ...more] = deathsOf(dead);
      assert.equal(more.length, 0);
      assert.equal(death.reason, 'maxlen');
      assert.equal(death.queue, queue);
      assert.equal(death.count, 1);
      assert.equal(death.exchange, '');
      assert.deepEqual(death['routing-keys'], [queue]);
      assert.equal(dead.properties.headers?.['x-first-death-reason'], 'maxlen');

      assert.equal((await getSoon(ch, queue)).body, 'a', 'the queue keeps the first');
      assert.equal(await ch.get(queue), null);
      assert.equal(await ch.get(dlq), null);
    },
  },
  {
    name: 'reject-publish-dlx: without confirms the refused message is dead-lettered all the same',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [queue, dlq] = [ctx.name('maxlen-dlx'), ctx.name('maxlen-dlx-dlq')];
      await ch.queueDeclare(dlq);
      await ch.queueDeclare(queue, { args: dlArgs(dlq, { 'x-max-length': 2, ...DLX }) });
      const plain = await conn.channel();
      for (const body of ['a', 'b', 'c', 'd']) await plain.publish('', queue, body);
      assert.deepEqual([(await getSoon(ch, dlq)).body, (await getSoon(ch, dlq)).body], ['c', 'd']);
      assert.deepEqual([(await getSoon(ch, queue)).body, (await getSoon(ch, queue)).body],
        ['a', 'b']);
      await quiet();
      assert.equal(await ch.get(queue), null);
    },
  },
  {
    name: 'reject-publish-dlx: x-max-length-bytes refuses by bytes and dead-letters',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [dlx, queue, dlq] = [ctx.name('dlx'), ctx.name('maxbytes-dlx'), ctx.name('dlq')];
      await ch.exchangeDeclare(dlx, 'fanout');
      await ch.queueDeclare(dlq);
      await ch.queueBind(dlq, dlx, '');
      await ch.queueDeclare(queue, {
        args: { 'x-max-length-bytes': 10, 'x-dead-letter-exchange': dlx, ...DLX },
      });
      const pub = await conn.channel({ confirm: true });
      await pub.publish('', queue, '123456');
      await assert.rejects(pub.publish('', queue, '12345'), 'over 10 bytes: nacked');
      await pub.publish('', queue, '1234');

      const dead = await getSoon(ch, dlq);
      assert.equal(dead.body, '12345');
      assert.equal(dead.exchange, dlx);
      assert.equal(dead.routingKey, queue, 'no dead-letter key: the message keeps its own');
      assert.equal(deathsOf(dead)[0].reason, 'maxlen');
      assert.equal((await getSoon(ch, queue)).body, '123456');
      assert.equal((await getSoon(ch, queue)).body, '1234');
    },
  },
  {
    name: 'reject-publish-dlx without a dead-letter exchange: nacked, nothing kept',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('maxlen-dlx-none');
      await ch.queueDeclare(queue, { args: { 'x-max-length': 1, ...DLX } });
      await fill(conn, queue, ['a']);
      const pub = await conn.channel({ confirm: true });
      await assert.rejects(pub.publish('', queue, 'b'), 'nacked');
      assert.equal((await getSoon(ch, queue)).body, 'a');
      assert.equal(await ch.get(queue), null);
    },
  },
  {
    name: 'reject-publish-dlx: redeclared with another x-overflow is 406 naming x-overflow',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('maxlen-dlx-redeclare');
      const args = { 'x-max-length': 1, ...DLX };
      await ch.queueDeclare(queue, { args });
      await ch.queueDeclare(queue, { args });
      const closed = await expectChannelError(conn, ch, 406, () =>
        ch.queueDeclare(queue, { args: { ...args, 'x-overflow': 'reject-publish' } }));
      assert.match(closed.text, new RegExp("inequivalent arg 'x-overflow' for queue '[^']+' " +
        "in vhost '/': received 'reject-publish' but current is 'reject-publish-dlx'"));
    },
  },
];
