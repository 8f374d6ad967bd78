// Transactions (tx.select, tx.commit, tx.rollback), checked against
// RabbitMQ. amqplib has no API for them, so only @cloudamqp/amqp-client
// runs these.

import assert from 'node:assert/strict';

import type { Chan, Conn, Msg } from './clients.js';
import { fill } from './cases-topology.js';
import {
  type Case,
  expectAsyncChannelClose,
  expectChannelError,
  quiet,
  until,
} from './harness.js';

const onlyCloud = { client: 'amqp-client', reason: 'amqplib has no API for tx.*' } as const;

async function getSoon(ch: Chan, queue: string): Promise<Msg> {
  let message: Msg | null = null;
  await until(`a message in ${queue}`, async () => {
    message = await ch.get(queue, { noAck: true });
    return message !== null;
  });
  return message!;
}

async function count(conn: Conn, queue: string): Promise<number> {
  const ch = await conn.channel();
  const { messageCount } = await ch.queueDeclare(queue, { passive: true });
  await ch.close();
  return messageCount;
}

export const txCases: Case[] = [
  {
    name: 'tx.commit: publishes are held until commit, then delivered',
    onlyClient: onlyCloud,
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('tx');
      await ch.queueDeclare(queue);
      await ch.tx!.select();
      await ch.publish('', queue, 'x');
      await ch.publish('', queue, 'y');
      await quiet();
      assert.equal(await count(conn, queue), 0);
      await ch.tx!.commit();
      // commit-ok comes once the publishes are in the queue.
      assert.equal(await count(conn, queue), 2);
      assert.equal((await getSoon(ch, queue)).body, 'x');
    },
  },
  {
    name: 'tx.rollback: held publishes are discarded; the next transaction starts at once',
    onlyClient: onlyCloud,
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('tx');
      await ch.queueDeclare(queue);
      await ch.tx!.select();
      await ch.publish('', queue, 'dropped');
      await ch.tx!.rollback();
      await ch.publish('', queue, 'kept');
      await ch.tx!.commit();
      assert.equal(await count(conn, queue), 1);
      assert.equal((await getSoon(ch, queue)).body, 'kept');
    },
  },
  {
    name: 'tx: acks wait for commit; rollback leaves the message unacked, not requeued',
    onlyClient: onlyCloud,
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('tx');
      await ch.queueDeclare(queue);
      await fill(conn, queue, ['a', 'b']);
      await ch.tx!.select();
      const a = await ch.get(queue);
      const b = await ch.get(queue);
      ch.ack(a!.deliveryTag);
      await ch.tx!.rollback();
      assert.equal(await count(conn, queue), 0, 'both still unacked after the rollback');
      // The rolled-back ack's tag is valid again and can be acked for real.
      ch.ack(a!.deliveryTag);
      ch.ack(b!.deliveryTag);
      await ch.tx!.commit();
      await ch.close();
      assert.equal(await count(conn, queue), 0, 'acked by the commit');
    },
  },
  {
    name: 'tx: acks rolled back come back redelivered when the channel closes',
    onlyClient: onlyCloud,
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('tx');
      await ch.queueDeclare(queue);
      await fill(conn, queue, ['a']);
      await ch.tx!.select();
      const a = await ch.get(queue);
      ch.ack(a!.deliveryTag);
      await ch.tx!.rollback();
      await ch.close();
      const again = await getSoon(await conn.channel(), queue);
      assert.equal(again.body, 'a');
      assert.equal(again.redelivered, true);
    },
  },
  {
    name: 'tx.commit and tx.rollback before tx.select are 406',
    onlyClient: onlyCloud,
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const closed = await expectChannelError(conn, ch, 406, () => ch.tx!.commit());
      assert.match(closed.text, /not transactional/);
      const ch2 = await conn.channel();
      await expectChannelError(conn, ch2, 406, () => ch2.tx!.rollback());
    },
  },
  {
    name: 'tx.select on a confirm channel is 406',
    onlyClient: onlyCloud,
    async run(ctx) {
      const { conn, ch } = await ctx.open({ confirm: true });
      const closed = await expectChannelError(conn, ch, 406, () => ch.tx!.select());
      assert.match(closed.text, /confirm to tx/);
    },
  },
  {
    name: 'tx: a publish to a missing exchange is refused with 404 before commit',
    onlyClient: onlyCloud,
    async run(ctx) {
      const { ch } = await ctx.open();
      await ch.tx!.select();
      await ch.publish(ctx.name('missing'), 'k', 'x');
      await expectAsyncChannelClose(ch, 404);
    },
  },
  {
    name: 'tx: a CC that is no array is refused at its publish (406), and nothing is stored',
    onlyClient: onlyCloud,
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [queue, copy] = [ctx.name('tx-cc'), ctx.name('tx-cc-copy')];
      await ch.queueDeclare(queue);
      await ch.queueDeclare(copy);
      await ch.tx!.select();
      await ch.publish('', queue, 'good', { headers: { CC: [copy] } });
      await ch.publish('', queue, 'bad', { headers: { CC: 'not-an-array' } });
      await expectAsyncChannelClose(ch, 406);
      assert.equal(await count(conn, queue), 0);
      assert.equal(await count(conn, copy), 0);
    },
  },
];
