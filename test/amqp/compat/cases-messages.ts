// Publishing (properties, typed headers, mandatory, confirms) and
// consuming (consume, get, qos, ack/nack/reject, recover, cancel).

import assert from 'node:assert/strict';

import type { Msg, Props } from './clients.js';
import { fill, queueExists } from './cases-topology.js';
import {
  type Case,
  consumeInto,
  expectAsyncChannelClose,
  expectChannelError,
  expectConnectionError,
  quiet,
  until,
  within,
} from './harness.js';

/** Every property but expiration, which TTL cases cover. */
const ALL_PROPERTIES: Props = {
  contentType: 'application/json',
  contentEncoding: 'gzip',
  headers: { tenant: 'acme', attempt: 3, urgent: true },
  deliveryMode: 2,
  priority: 7,
  correlationId: 'corr-1',
  replyTo: 'replies',
  messageId: 'msg-1',
  timestamp: 1_700_000_000,
  type: 'order.created',
  userId: 'guest',
  appId: 'compat-suite',
};

export const publishCases: Case[] = [
  {
    name: 'basic.publish: every property round-trips to the consumer',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('props');
      await ch.queueDeclare(queue, { args: { 'x-max-priority': 9 } });
      const pub = await conn.channel({ confirm: true });
      await pub.publish('', queue, '{"a":1}', ALL_PROPERTIES);
      const inbox = await consumeInto(ch, queue, { noAck: true });
      const [message] = await inbox.take(1);
      assert.equal(message.body, '{"a":1}');
      assert.equal(message.exchange, '');
      assert.equal(message.routingKey, queue);
      assert.equal(message.redelivered, false);
      assert.equal(message.consumerTag, inbox.tag);
      assert.deepEqual(message.properties, ALL_PROPERTIES);
    },
  },
  {
    name: 'basic.publish: the expiration property round-trips',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('expiration');
      await ch.queueDeclare(queue);
      const pub = await conn.channel({ confirm: true });
      await pub.publish('', queue, 'x', { expiration: '60000' });
      const message = await ch.get(queue, { noAck: true });
      assert.equal(message?.properties.expiration, '60000');
    },
  },
  {
    name: 'basic.publish: properties the publisher leaves out stay out',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('bare');
      await ch.queueDeclare(queue);
      const pub = await conn.channel({ confirm: true });
      await pub.publish('', queue, 'x', { contentType: 'text/plain' });
      const message = await ch.get(queue, { noAck: true });
      const { headers, ...rest } = message!.properties;
      // amqplib always sends a headers table, empty if need be.
      assert.deepEqual(rest, { contentType: 'text/plain' });
      assert.ok(headers === undefined || Object.keys(headers).length === 0, JSON.stringify(headers));
    },
  },
  {
    name: 'basic.publish: typed header values round-trip',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('typed');
      await ch.queueDeclare(queue);
      const pub = await conn.channel({ confirm: true });
      await pub.publish('', queue, 'x', { headers: ctx.client.typedHeaders.sent });
      const message = await ch.get(queue, { noAck: true });
      assert.deepEqual(message?.properties.headers, ctx.client.typedHeaders.received);
    },
  },
  {
    name: 'basic.publish: a user-id other than the connection\'s user is 406',
    async run(ctx) {
      const { ch } = await ctx.open();
      await ch.publish('', ctx.name('q'), 'x', { userId: 'mallory' });
      const closed = await expectAsyncChannelClose(ch, 406);
      assert.match(closed.text, new RegExp("PRECONDITION_FAILED - user_id property set to " +
        "'mallory' but authenticated user was 'guest'"));
    },
  },
  {
    name: 'basic.publish: the connection\'s own user-id is accepted and delivered',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('q');
      await ch.queueDeclare(queue);
      const pub = await conn.channel({ confirm: true });
      await pub.publish('', queue, 'x', { userId: 'guest' });
      const message = await ch.get(queue, { noAck: true });
      assert.equal(message?.properties.userId, 'guest');
    },
  },
  {
    name: 'basic.publish: a wrong user-id in a transaction is 406 at once, not at commit',
    onlyClient: { client: 'amqp-client', reason: 'amqplib has no tx methods' },
    async run(ctx) {
      const { ch } = await ctx.open();
      const queue = ctx.name('q');
      await ch.queueDeclare(queue);
      await ch.tx!.select();
      await ch.publish('', queue, 'x', { userId: 'mallory' });
      const closed = await expectAsyncChannelClose(ch, 406);
      assert.match(closed.text, /user_id property set to 'mallory'/);
    },
  },
  {
    name: 'basic.publish: priority 200 comes back as 200',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('prio');
      await ch.queueDeclare(queue, { args: { 'x-max-priority': 255 } });
      await (await conn.channel({ confirm: true })).publish('', queue, 'x', { priority: 200 });
      const got = await ch.get(queue, { noAck: true });
      assert.equal(got?.properties.priority, 200);
      // Usher's own header that keeps it is not one of the message's.
      assert.deepEqual(got?.properties.headers ?? {}, {});
    },
  },
  {
    name: 'basic.publish: priorities above 9 are ordered as 9',
    onlyTarget: { target: 'usher', reason: 'Usher has priorities 0-9 (README); RabbitMQ orders up to x-max-priority' },
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('prio');
      await ch.queueDeclare(queue, { args: { 'x-max-priority': 255 } });
      const pub = await conn.channel({ confirm: true });
      for (const priority of [9, 200, 10]) await pub.publish('', queue, `p${priority}`, { priority });
      const got: Array<[string, number | undefined]> = [];
      for (let i = 0; i < 3; i++) {
        const message = await ch.get(queue, { noAck: true });
        got.push([message?.body ?? '', message?.properties.priority]);
      }
      assert.deepEqual(got, [['p9', 9], ['p200', 200], ['p10', 10]]);
    },
  },
  {
    name: 'x-max-priority: higher priorities are delivered first',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('prio');
      await ch.queueDeclare(queue, { args: { 'x-max-priority': 9 } });
      const pub = await conn.channel({ confirm: true });
      for (const priority of [1, 5, 9, 3]) await pub.publish('', queue, `p${priority}`, { priority });
      const inbox = await consumeInto(ch, queue, { noAck: true });
      assert.deepEqual((await inbox.take(4)).map((m) => m.body), ['p9', 'p5', 'p3', 'p1']);
    },
  },
  {
    name: 'no x-max-priority: messages come in publish order whatever their priority',
    onlyTarget: {
      target: 'rabbitmq',
      reason: 'every Usher queue has priorities 0-9 (README, x-max-priority)',
    },
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('fifo');
      await ch.queueDeclare(queue);
      const pub = await conn.channel({ confirm: true });
      for (const priority of [1, 9]) await pub.publish('', queue, `p${priority}`, { priority });
      const inbox = await consumeInto(ch, queue, { noAck: true });
      assert.deepEqual((await inbox.take(2)).map((m) => m.body), ['p1', 'p9']);
    },
  },
  {
    name: 'no x-max-priority: higher priorities are still delivered first',
    onlyTarget: {
      target: 'usher',
      reason: 'every Usher queue has priorities 0-9 (README); RabbitMQ keeps publish order',
    },
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('prio');
      await ch.queueDeclare(queue);
      const pub = await conn.channel({ confirm: true });
      for (const priority of [1, 9]) await pub.publish('', queue, `p${priority}`, { priority });
      const inbox = await consumeInto(ch, queue, { noAck: true });
      assert.deepEqual((await inbox.take(2)).map((m) => m.body), ['p9', 'p1']);
    },
  },
  {
    name: 'basic.publish: an empty body and a 1 MiB body (many frames) round-trip',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('sizes');
      await ch.queueDeclare(queue);
      const big = 'abcdefghijklmnop'.repeat(65536);
      const pub = await conn.channel({ confirm: true });
      await pub.publish('', queue, '');
      await pub.publish('', queue, big);
      assert.equal((await ch.get(queue, { noAck: true }))?.body, '');
      assert.equal((await ch.get(queue, { noAck: true }))?.body, big);
    },
  },
  {
    name: 'mandatory: an unroutable message comes back with basic.return (312 NO_ROUTE)',
    async run(ctx) {
      const { ch } = await ctx.open({ confirm: true });
      const exchange = ctx.name('x');
      await ch.exchangeDeclare(exchange, 'direct');
      const returned: Msg[] = [];
      ch.onReturn((message) => returned.push(message));
      await ch.publish(exchange, 'nowhere', 'lost', { messageId: 'm1', headers: { a: 'b' } }, true);
      // basic.return comes before the publish's confirm.
      assert.equal(returned.length, 1);
      await ch.publish(exchange, 'nowhere', 'quiet', {}, false);
      await quiet();
      assert.equal(returned.length, 1);
      const [message] = returned;
      assert.equal(message.replyCode, 312);
      assert.equal(message.replyText, 'NO_ROUTE');
      assert.equal(message.exchange, exchange);
      assert.equal(message.routingKey, 'nowhere');
      assert.equal(message.body, 'lost');
      assert.equal(message.properties.messageId, 'm1');
      assert.deepEqual(message.properties.headers, { a: 'b' });
    },
  },
  {
    name: 'publish to a missing exchange closes the channel with 404',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      await ch.publish(ctx.name('missing'), 'k', 'x');
      const closed = await expectAsyncChannelClose(ch, 404);
      assert.match(closed.text, /no exchange/);
      await (await conn.channel()).close();
    },
  },
  {
    name: 'publisher confirms: every publish is acked, routed or not, fanned out or not',
    async run(ctx) {
      const { ch } = await ctx.open({ confirm: true });
      const fanout = ctx.name('fan');
      const [a, b] = [ctx.name('a'), ctx.name('b')];
      await ch.exchangeDeclare(fanout, 'fanout');
      for (const queue of [a, b]) {
        await ch.queueDeclare(queue);
        await ch.queueBind(queue, fanout, '');
      }
      const confirms = [];
      for (let i = 0; i < 50; i++) confirms.push(ch.publish(fanout, '', `m${i}`));
      for (let i = 0; i < 10; i++) confirms.push(ch.publish('', a, `d${i}`));
      for (let i = 0; i < 5; i++) confirms.push(ch.publish('', ctx.name('nowhere'), 'u'));
      await within(5000, 'every confirm', Promise.all(confirms));
      assert.equal((await ch.queueDeclare(a, { passive: true })).messageCount, 60);
      assert.equal((await ch.queueDeclare(b, { passive: true })).messageCount, 50);
    },
  },
];

export const consumeCases: Case[] = [
  {
    name: 'basic.consume no-ack: every message once, in order, not redelivered',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('noack');
      await ch.queueDeclare(queue);
      const inbox = await consumeInto(ch, queue, { noAck: true, tag: 'my-tag' });
      assert.equal(inbox.tag, 'my-tag');
      const bodies = Array.from({ length: 20 }, (_, i) => `m${i}`);
      await fill(conn, queue, bodies);
      const got = await inbox.take(20);
      assert.deepEqual(got.map((m) => m.body), bodies);
      assert.ok(got.every((m) => !m.redelivered && m.consumerTag === 'my-tag'));
      assert.deepEqual(got.map((m) => m.deliveryTag), bodies.map((_, i) => i + 1));
      await quiet();
      assert.equal((await ch.queueDeclare(queue, { passive: true })).messageCount, 0);
    },
  },
  {
    name: 'basic.consume manual ack: unacked messages come back redelivered when the channel closes',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('manual');
      await ch.queueDeclare(queue);
      await fill(conn, queue, ['a', 'b', 'c']);
      const inbox = await consumeInto(ch, queue);
      const [first] = await inbox.take(3);
      ch.ack(first.deliveryTag);
      await ch.close();
      const ch2 = await conn.channel();
      const again = await consumeInto(ch2, queue, { noAck: true });
      const got = await again.take(2);
      assert.deepEqual(got.map((m) => m.body), ['b', 'c']);
      assert.ok(got.every((m) => m.redelivered));
    },
  },
  {
    name: 'basic.consume: unacked messages come back redelivered when the connection closes',
    async run(ctx) {
      const queue = ctx.name('conn');
      const { conn, ch } = await ctx.open();
      await ch.queueDeclare(queue);
      await fill(conn, queue, ['a', 'b']);
      const inbox = await consumeInto(ch, queue);
      await inbox.take(2);
      await conn.close();
      const other = await ctx.connect();
      const again = await consumeInto(await other.channel(), queue, { noAck: true });
      const got = await again.take(2);
      assert.deepEqual(got.map((m) => m.body), ['a', 'b']);
      assert.ok(got.every((m) => m.redelivered));
    },
  },
  {
    name: 'basic.consume: a missing queue is 404; a reused consumer tag is 530',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      await expectChannelError(conn, ch, 404, () => ch.consume(ctx.name('missing'), {}, () => {}));
      const queue = ctx.name('q');
      const ch2 = await conn.channel();
      await ch2.queueDeclare(queue);
      await ch2.consume(queue, { tag: 'twice' }, () => {});
      await expectConnectionError(conn, 530, () => ch2.consume(queue, { tag: 'twice' }, () => {}));
    },
  },
  {
    name: 'basic.consume exclusive: other consumers are refused with 403',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('excl');
      await ch.queueDeclare(queue);
      await ch.consume(queue, { exclusive: true }, () => {});
      const ch2 = await conn.channel();
      await expectChannelError(conn, ch2, 403, () => ch2.consume(queue, {}, () => {}));
    },
  },
  {
    name: 'basic.qos global=false: each consumer has its own prefetch',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [a, b] = [ctx.name('a'), ctx.name('b')];
      for (const queue of [a, b]) {
        await ch.queueDeclare(queue);
        await fill(conn, queue, ['1', '2', '3', '4', '5']);
      }
      await ch.qos(2);
      const inboxA = await consumeInto(ch, a);
      const inboxB = await consumeInto(ch, b);
      await inboxA.take(2);
      await inboxB.take(2);
      await quiet();
      assert.equal(inboxA.messages.length, 2);
      assert.equal(inboxB.messages.length, 2);
      ch.ack(inboxA.messages[0].deliveryTag);
      await inboxA.take(3);
      await quiet();
      assert.equal(inboxA.messages.length, 3);
      assert.equal(inboxB.messages.length, 2);
    },
  },
  {
    name: 'basic.qos global=false after basic.consume: the running consumer keeps its prefetch',
    usherTodo: 'on purpose: Usher changes the running consumers\' prefetch too, as LavinMQ ' +
      'does, for clients that raise it while holding messages (kombu, so Celery; README)',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('raise');
      await ch.queueDeclare(queue);
      await fill(conn, queue, ['1', '2', '3', '4']);
      await ch.qos(1);
      const inbox = await consumeInto(ch, queue);
      await inbox.take(1);
      await ch.qos(3);
      await quiet();
      assert.equal(inbox.messages.length, 1);
    },
  },
  {
    // kombu takes global=false as one limit for the channel and raises it
    // for each delayed task a Celery worker holds (README).
    name: 'basic.qos global=false after basic.consume: raised and lowered for the running consumer',
    onlyTarget: { target: 'usher', reason: 'RabbitMQ applies it to later consumers only' },
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('raise');
      await ch.queueDeclare(queue);
      await fill(conn, queue, ['1', '2', '3', '4', '5', '6']);
      await ch.qos(1);
      const inbox = await consumeInto(ch, queue);
      await inbox.take(1);
      await ch.qos(3);
      await inbox.take(3);
      await ch.qos(1);
      ch.ack(inbox.messages[0].deliveryTag);
      ch.ack(inbox.messages[1].deliveryTag);
      await quiet();
      assert.equal(inbox.messages.length, 3, 'one unacked of a limit of 1: nothing more');
      ch.ack(inbox.messages[2].deliveryTag);
      await inbox.take(4);
      await quiet();
      assert.equal(inbox.messages.length, 4);
    },
  },
  {
    name: 'basic.qos global=true: the channel\'s consumers share one prefetch',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const [a, b] = [ctx.name('a'), ctx.name('b')];
      for (const queue of [a, b]) {
        await ch.queueDeclare(queue);
        await fill(conn, queue, ['1', '2', '3', '4', '5']);
      }
      await ch.qos(3, true);
      const inboxA = await consumeInto(ch, a);
      const inboxB = await consumeInto(ch, b);
      await until('3 deliveries', () => inboxA.messages.length + inboxB.messages.length >= 3);
      await quiet();
      assert.equal(inboxA.messages.length + inboxB.messages.length, 3);
      ch.ack(0, true);
      await until('3 more', () => inboxA.messages.length + inboxB.messages.length >= 6);
      await quiet();
      assert.equal(inboxA.messages.length + inboxB.messages.length, 6);
    },
  },
  {
    name: 'basic.get: get-empty, then get-ok with message-count, exchange and key',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('get');
      await ch.queueDeclare(queue);
      assert.equal(await ch.get(queue), null);
      await fill(conn, queue, ['a', 'b', 'c']);
      const message = await ch.get(queue, { noAck: true });
      assert.equal(message?.body, 'a');
      assert.equal(message?.messageCount, 2);
      assert.equal(message?.exchange, '');
      assert.equal(message?.routingKey, queue);
      assert.equal(message?.redelivered, false);
      const second = await ch.get(queue);
      assert.equal(second?.messageCount, 1);
      ch.nack(second!.deliveryTag, false, true);
      const again = await ch.get(queue);
      assert.equal(again?.body, 'b');
      assert.equal(again?.redelivered, true);
      await expectChannelError(conn, ch, 404, () => ch.get(ctx.name('missing')));
    },
  },
  {
    name: 'basic.ack multiple: settles every tag up to the one named',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('ackmulti');
      await ch.queueDeclare(queue);
      await fill(conn, queue, ['a', 'b', 'c', 'd']);
      const inbox = await consumeInto(ch, queue);
      const got = await inbox.take(4);
      ch.ack(got[2].deliveryTag, true);
      await ch.close();
      const ch2 = await conn.channel();
      const left = await ch2.get(queue, { noAck: true });
      assert.equal(left?.body, 'd');
      assert.equal(left?.redelivered, true);
      assert.equal(left?.messageCount, 0);
    },
  },
  {
    name: 'basic.nack multiple requeue: every tag up to the one named comes back redelivered',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('nackmulti');
      await ch.queueDeclare(queue);
      await fill(conn, queue, ['a', 'b', 'c']);
      const inbox = await consumeInto(ch, queue);
      const got = await inbox.take(3);
      ch.nack(got[1].deliveryTag, true, true);
      const redelivered = (await inbox.take(5)).slice(3);
      assert.deepEqual(redelivered.map((m) => m.body).sort(), ['a', 'b']);
      assert.ok(redelivered.every((m) => m.redelivered));
    },
  },
  {
    // Requeued one by one, the first went out again ahead of newer ones
    // and the rest after them (breaker session).
    name: 'basic.nack multiple requeue: they come back in order, ahead of newer messages',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('nackorder');
      await ch.queueDeclare(queue);
      const bodies = Array.from({ length: 8 }, (_, i) => `m${i}`);
      await fill(conn, queue, bodies);
      await ch.qos(4);
      const inbox = await consumeInto(ch, queue);
      const got = await inbox.take(4);
      ch.nack(got[3].deliveryTag, true, true);
      const again = (await inbox.take(8)).slice(4);
      assert.deepEqual(again.map((m) => m.body), bodies.slice(0, 4));
      ch.ack(0, true);
    },
  },
  {
    name: 'basic.reject and basic.nack with requeue=false drop the message',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('drop');
      await ch.queueDeclare(queue);
      await fill(conn, queue, ['a', 'b', 'c']);
      const inbox = await consumeInto(ch, queue);
      const [a, b, c] = await inbox.take(3);
      ch.reject(a.deliveryTag, false);
      ch.nack(b.deliveryTag, false, false);
      ch.reject(c.deliveryTag, true);
      const [, , , back] = await inbox.take(4);
      assert.equal(back.body, 'c');
      assert.equal(back.redelivered, true);
      ch.ack(back.deliveryTag);
      await quiet();
      assert.equal(inbox.messages.length, 4);
    },
  },
  {
    name: 'basic.ack of an unknown delivery tag closes the channel with 406',
    async run(ctx) {
      const { ch } = await ctx.open();
      ch.ack(99);
      const closed = await expectAsyncChannelClose(ch, 406);
      assert.match(closed.text, /unknown delivery tag 99/);
    },
  },
  {
    name: 'basic.ack of a tag already acked is 406',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('twice');
      await ch.queueDeclare(queue);
      await fill(conn, queue, ['a']);
      const message = await ch.get(queue);
      ch.ack(message!.deliveryTag);
      ch.ack(message!.deliveryTag);
      await expectAsyncChannelClose(ch, 406);
    },
  },
  {
    name: 'basic.ack multiple naming a tag already acked is 406',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('multi');
      await ch.queueDeclare(queue);
      await fill(conn, queue, ['a', 'b']);
      await ch.get(queue);
      const b = await ch.get(queue);
      ch.ack(b!.deliveryTag);
      ch.ack(b!.deliveryTag, true);
      await expectAsyncChannelClose(ch, 406);
    },
  },
  {
    name: 'basic.recover requeue=true: unacked messages come again, redelivered',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('recover');
      await ch.queueDeclare(queue);
      await fill(conn, queue, ['a', 'b']);
      const inbox = await consumeInto(ch, queue);
      await inbox.take(2);
      await ch.recover(true);
      const again = (await inbox.take(4)).slice(2);
      assert.deepEqual(again.map((m) => m.body).sort(), ['a', 'b']);
      assert.ok(again.every((m) => m.redelivered));
      ch.ack(0, true);
    },
  },
  {
    name: 'basic.recover requeue=false is refused with 540',
    onlyClient: { client: 'amqp-client', reason: 'amqplib always sends requeue=true' },
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      await expectConnectionError(conn, 540, () => ch.recover(false));
    },
  },
  {
    name: 'basic.qos with a prefetch-size is refused with 540',
    onlyClient: { client: 'amqp-client', reason: 'amqplib always sends prefetch-size 0' },
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      await expectConnectionError(conn, 540, () => ch.qos(10, false, 65536));
    },
  },
  {
    name: 'basic.cancel: deliveries stop; an unknown tag is answered too',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('cancel');
      await ch.queueDeclare(queue);
      const inbox = await consumeInto(ch, queue, { noAck: true });
      await fill(conn, queue, ['a']);
      await inbox.take(1);
      await ch.cancel(inbox.tag);
      await fill(conn, queue, ['b']);
      await quiet();
      assert.deepEqual(inbox.bodies(), ['a']);
      assert.equal(inbox.cancelled, false);
      await ch.cancel('no-such-consumer');
      assert.equal((await ch.get(queue, { noAck: true }))?.body, 'b');
    },
  },
  {
    name: 'basic.cancel from the server when the queue is deleted',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('deleted');
      await ch.queueDeclare(queue);
      await fill(conn, queue, ['a']);
      const inbox = await consumeInto(ch, queue);
      const [held] = await inbox.take(1);
      await (await conn.channel()).queueDelete(queue);
      await until('the server\'s basic.cancel', () => inbox.cancelled);
      assert.equal(await queueExists(conn, queue), false);
      // Acking what came from the deleted queue is no error.
      ch.ack(held.deliveryTag);
      await ch.queueDeclare('', { exclusive: true });
    },
  },
];
