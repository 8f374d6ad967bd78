// Direct reply-to (amq.rabbitmq.reply-to), checked against RabbitMQ: an
// RPC client consumes its replies from the pseudo-queue, the server sees
// a reply name of the client channel's own, and a reply published to it
// comes straight back; the refusals carry RabbitMQ's codes.

import assert from 'node:assert/strict';

import type { Msg } from './clients.js';
import { type Case, consumeInto, expectAsyncChannelClose, expectChannelError, quiet } from './harness.js';

const REPLY_QUEUE = 'amq.rabbitmq.reply-to';

export const directReplyCases: Case[] = [
  {
    name: 'direct reply-to: a request carries a reply name of its own, and the reply comes back',
    async run(ctx) {
      const { ch: server } = await ctx.open();
      const requests = ctx.name('rpc');
      await server.queueDeclare(requests);
      const seen: string[] = [];
      await server.consume(requests, { noAck: true }, (request) => {
        seen.push(request.properties.replyTo ?? '');
        void server.publish('', request.properties.replyTo ?? '', `re: ${request.body}`, {
          correlationId: request.properties.correlationId,
          headers: { n: 1 },
        });
      });

      const { ch: client } = await ctx.open({ confirm: true });
      const replies = await consumeInto(client, REPLY_QUEUE, { noAck: true });
      await client.publish('', requests, 'ping', { replyTo: REPLY_QUEUE, correlationId: 'c1' });
      await client.publish('', requests, 'pong', { replyTo: REPLY_QUEUE, correlationId: 'c2' });
      const [first, second] = await replies.take(2);

      // One name for the channel, never the pseudo-queue's own.
      assert.equal(seen.length, 2);
      assert.equal(seen[0], seen[1]);
      assert.ok(seen[0].startsWith(`${REPLY_QUEUE}.`), seen[0]);
      assert.deepEqual([first.body, second.body], ['re: ping', 're: pong']);
      assert.equal(first.properties.correlationId, 'c1');
      assert.deepEqual(first.properties.headers, { n: 1 });
      assert.equal(first.exchange, '');
      assert.equal(first.routingKey, seen[0]);
      assert.equal(first.redelivered, false);
      assert.equal(first.consumerTag, replies.tag);
    },
  },
  {
    name: 'direct reply-to: the pseudo-queue answers a declare, passive or not, and a delete',
    async run(ctx) {
      const { ch } = await ctx.open();
      const passive = await ch.queueDeclare(REPLY_QUEUE, { passive: true });
      assert.deepEqual(passive, { queue: REPLY_QUEUE, messageCount: 0, consumerCount: 1 });
      const active = await ch.queueDeclare(REPLY_QUEUE);
      assert.equal(active.queue, REPLY_QUEUE);
      assert.equal(await ch.queueDelete(REPLY_QUEUE), 0);
    },
  },
  {
    name: 'direct reply-to: a reply consumer that acks is refused (406)',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      await expectChannelError(conn, ch, 406, () => ch.consume(REPLY_QUEUE, { noAck: false }, () => {}));
    },
  },
  {
    name: 'direct reply-to: a second reply consumer on the channel is refused (406)',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      await ch.consume(REPLY_QUEUE, { noAck: true }, () => {});
      await expectChannelError(conn, ch, 406, () => ch.consume(REPLY_QUEUE, { noAck: true }, () => {}));
    },
  },
  {
    name: 'direct reply-to: asking for replies without a reply consumer on the channel is refused (406)',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('rpc');
      await ch.queueDeclare(queue);
      // The reply consumer is on another channel: it does not count.
      const other = await conn.channel();
      await other.consume(REPLY_QUEUE, { noAck: true }, () => {});
      void ch.publish('', queue, 'x', { replyTo: REPLY_QUEUE }).catch(() => {});
      await expectAsyncChannelClose(ch, 406);
      const check = await conn.channel();
      assert.equal((await check.queueDeclare(queue, { passive: true })).messageCount, 0);
    },
  },
  {
    name: 'direct reply-to: a reply to a name no channel holds is unroutable, and confirmed',
    async run(ctx) {
      const { ch: client } = await ctx.open();
      const requests = ctx.name('rpc');
      await client.queueDeclare(requests);
      const replies = await consumeInto(client, REPLY_QUEUE, { noAck: true });
      await client.publish('', requests, 'ask', { replyTo: REPLY_QUEUE });
      const { ch: server } = await ctx.open({ confirm: true });
      const returned: Msg[] = [];
      server.onReturn((message) => returned.push(message));
      let request: Msg | null = null;
      for (let i = 0; i < 50 && request === null; i++) {
        request = await server.get(requests, { noAck: true });
        if (request === null) await quiet();
      }
      assert.ok(request !== null, 'the request arrived');
      const name = request.properties.replyTo!;

      // A passive declare tells a server whether its caller is still there.
      assert.deepEqual(await server.queueDeclare(name, { passive: true }),
        { queue: name, messageCount: 0, consumerCount: 1 });

      // Made up, and the client's own once its channel has gone.
      await server.publish('', `${REPLY_QUEUE}.made-up`, 'lost', {}, true);
      await client.close();
      await server.publish('', name, 'late', {}, true);
      await quiet();
      assert.deepEqual(returned.map((m) => [m.replyCode, m.routingKey, m.body]), [
        [312, `${REPLY_QUEUE}.made-up`, 'lost'],
        [312, name, 'late'],
      ]);
      assert.equal(replies.messages.length, 0);
      const { conn: other, ch: probe } = await ctx.open();
      await expectChannelError(other, probe, 404, () => probe.queueDeclare(name, { passive: true }));
    },
  },
  {
    name: 'direct reply-to: a reply-to name with a suffix is a name like any other',
    async run(ctx) {
      const { ch } = await ctx.open();
      const queue = ctx.name('rpc');
      await ch.queueDeclare(queue);
      const named = `${REPLY_QUEUE}.chosen`;
      await ch.publish('', queue, 'x', { replyTo: named });
      const inbox = await consumeInto(ch, queue, { noAck: true });
      const [message] = await inbox.take(1);
      assert.equal(message.properties.replyTo, named);
    },
  },
  {
    name: 'direct reply-to: basic.get from the pseudo-queue finds no queue (404)',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      await expectChannelError(conn, ch, 404, () => ch.get(REPLY_QUEUE, { noAck: true }));
    },
  },
];
