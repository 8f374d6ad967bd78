// Connections, channels, queues and exchanges: declare, bind, purge,
// delete, and the refusals RabbitMQ gives for each.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { replyCodeOf, type Chan, type Conn } from './clients.js';
import {
  type Case,
  consumeInto,
  expectChannelError,
  expectConnectionError,
  quiet,
  until,
} from './harness.js';

/** Whether a queue exists, asked on a channel of its own (404 closes it). */
export async function queueExists(conn: Conn, queue: string): Promise<boolean> {
  const ch = await conn.channel();
  try {
    await ch.queueDeclare(queue, { passive: true });
    await ch.close();
    return true;
  } catch {
    return false;
  }
}

export async function exchangeExists(conn: Conn, exchange: string): Promise<boolean> {
  const ch = await conn.channel();
  try {
    await ch.exchangeDeclare(exchange, 'direct', { passive: true });
    await ch.close();
    return true;
  } catch {
    return false;
  }
}

/** Publishes through the default exchange on a confirm channel. */
export async function fill(conn: Conn, queue: string, bodies: string[]): Promise<void> {
  const ch = await conn.channel({ confirm: true });
  await Promise.all(bodies.map((body) => ch.publish('', queue, body)));
  await ch.close();
}

/**
 * Publishes to `exchange` with `key` and reports which of `queues` got
 * that message. The body is unique, and each queue is drained: cases on
 * other connections may route into the amq.* built-ins at the same time.
 */
async function routedTo(
  conn: Conn,
  ch: Chan,
  exchange: string,
  key: string,
  queues: string[],
  headers?: Record<string, unknown>,
): Promise<string[]> {
  const body = `${key}#${randomUUID()}`;
  const confirm = await conn.channel({ confirm: true });
  await confirm.publish(exchange, key, body, headers === undefined ? {} : { headers });
  await confirm.close();
  const got: string[] = [];
  for (const queue of queues) {
    for (let i = 0; i < 100; i++) {
      const message = await ch.get(queue, { noAck: true });
      if (message === null) break;
      if (message.body === body) got.push(queue);
    }
  }
  return got;
}

export const connectionCases: Case[] = [
  {
    name: 'connection.start: server properties carry the capabilities clients switch on',
    onlyClient: {
      client: 'amqplib',
      reason: 'amqp-client does not keep connection.start\'s server-properties',
    },
    async run(ctx) {
      const conn = await ctx.connect();
      const props = conn.serverProperties!;
      assert.equal(typeof props.product, 'string');
      assert.equal(typeof props.version, 'string');
      assert.equal(props.product, ctx.usher ? 'Usher' : 'RabbitMQ');
      const capabilities = props.capabilities as Record<string, unknown>;
      for (const name of ['publisher_confirms', 'exchange_exchange_bindings', 'basic.nack',
        'consumer_cancel_notify', 'connection.blocked', 'authentication_failure_close',
        'per_consumer_qos', 'consumer_priorities', 'direct_reply_to']) {
        assert.equal(capabilities[name], true, `capability ${name}`);
      }
    },
  },
  {
    name: 'connection: a wrong password is refused (403)',
    async run(ctx) {
      await assert.rejects(ctx.client.connect(ctx.url.replace('guest:guest', 'guest:wrong')),
        /403|ACCESS.REFUSED/i);
    },
  },
  {
    name: 'connection: a vhost that does not exist is refused (530)',
    async run(ctx) {
      const err = await ctx.client.connect(`${ctx.url}/no-such-vhost`).then(
        (conn) => { void conn.close(); return null; }, (e: unknown) => e);
      assert.ok(err !== null, 'the connection opened');
      // amqplib's error names no code ("Expected ConnectionOpenOk; got
      // <ConnectionClose>"); amqp-client's does.
      const code = replyCodeOf(err);
      if (code !== undefined) assert.equal(code, 530, String(err));
    },
  },
  {
    name: 'connection.close: a clean close ends the connection and its channels',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      await conn.close();
      assert.equal((await conn.closed).code, 0);
      assert.equal((await ch.closed).scope, 'client');
    },
  },
  {
    name: 'channel: several open at once; closing one leaves the others working',
    async run(ctx) {
      const conn = await ctx.connect();
      const [a, b, c] = await Promise.all([conn.channel(), conn.channel(), conn.channel()]);
      await b.close();
      const declared = await a.queueDeclare('', { exclusive: true });
      await c.queueDeclare(declared.queue, { passive: true });
      const d = await conn.channel();
      await d.queueDeclare(declared.queue, { passive: true });
    },
  },
  {
    name: 'channel.flow active=true answers flow-ok',
    onlyClient: { client: 'amqp-client', reason: 'amqplib has no API for channel.flow' },
    async run(ctx) {
      const { ch } = await ctx.open();
      assert.equal(await ch.flow!(true), true);
    },
  },
  {
    name: 'channel.flow active=false pauses deliveries until active=true',
    onlyTarget: { target: 'usher', reason: 'RabbitMQ refuses client-sent flow active=false with 540' },
    onlyClient: { client: 'amqp-client', reason: 'amqplib has no API for channel.flow' },
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('flow');
      await ch.queueDeclare(queue);
      assert.equal(await ch.flow!(false), false);
      const inbox = await consumeInto(ch, queue, { noAck: true });
      await fill(conn, queue, ['a']);
      await quiet();
      assert.deepEqual(inbox.bodies(), []);
      assert.equal(await ch.flow!(true), true);
      await inbox.take(1);
    },
  },
  {
    name: 'channel.flow active=false is refused with 540',
    onlyTarget: { target: 'rabbitmq', reason: 'Usher implements flow active=false, as the spec says' },
    onlyClient: { client: 'amqp-client', reason: 'amqplib has no API for channel.flow' },
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      await expectConnectionError(conn, 540, () => ch.flow!(false));
    },
  },
];

export const queueCases: Case[] = [
  {
    name: 'queue.declare: server-named exclusive queue is amq.gen-*',
    async run(ctx) {
      const { ch } = await ctx.open();
      const ok = await ch.queueDeclare('', { exclusive: true });
      assert.match(ok.queue, /^amq\.gen-/);
      assert.equal(ok.messageCount, 0);
      assert.equal(ok.consumerCount, 0);
    },
  },
  {
    name: 'queue.declare passive: counts messages and consumers; 404 when missing',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('passive');
      await ch.queueDeclare(queue, { durable: true });
      const consumer = await conn.channel();
      const inbox = await consumeInto(consumer, queue);
      assert.deepEqual(await ch.queueDeclare(queue, { passive: true }),
        { queue, messageCount: 0, consumerCount: 1 });
      await consumer.cancel(inbox.tag);
      await fill(conn, queue, ['a', 'b']);
      assert.deepEqual(await ch.queueDeclare(queue, { passive: true }),
        { queue, messageCount: 2, consumerCount: 0 });
      assert.deepEqual(await ch.queueDeclare(queue, { durable: true }),
        { queue, messageCount: 2, consumerCount: 0 });
      await expectChannelError(conn, ch, 404,
        () => ch.queueDeclare(ctx.name('missing'), { passive: true }));
    },
  },
  {
    name: 'queue.declare: the same arguments again are fine; other ones are 406',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('args');
      await ch.queueDeclare(queue, { durable: true, args: { 'x-message-ttl': 60000 } });
      await ch.queueDeclare(queue, { durable: true, args: { 'x-message-ttl': 60000 } });
      const closed = await expectChannelError(conn, ch, 406,
        () => ch.queueDeclare(queue, { durable: true, args: { 'x-message-ttl': 30000 } }));
      assert.match(closed.text, /PRECONDITION_FAILED - inequivalent arg/);
    },
  },
  {
    // Applications written for RabbitMQ declare these; refusing them kept
    // such an application from starting (new-user session).
    name: 'queue.declare: x-queue-mode and x-queue-version are taken; a wrong mode is 406',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      await ch.queueDeclare(ctx.name('lazy'),
        { durable: true, args: { 'x-queue-mode': 'lazy', 'x-queue-version': 2 } });
      await expectChannelError(conn, ch, 406, () => ch.queueDeclare(ctx.name('eager'),
        { durable: true, args: { 'x-queue-mode': 'eager' } }));
    },
  },
  {
    // RabbitMQ 3.10 compares a classic queue's x-queue-mode,
    // x-queue-version and x-queue-master-locator on a redeclare, one left
    // out included; Usher took any (breaker session).
    name: "queue.declare: a classic queue's storage hints must be repeated as declared (406)",
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('hints');
      const hints = {
        'x-queue-mode': 'lazy', 'x-queue-version': 2, 'x-queue-master-locator': 'min-masters',
      };
      await ch.queueDeclare(queue, { durable: true, args: hints });
      await ch.queueDeclare(queue, { durable: true, args: hints });
      const { 'x-queue-master-locator': _left, ...withoutLocator } = hints;
      const where = `for queue '${queue}' in vhost '/'`;
      const refusals: Array<[Record<string, unknown>, string]> = [
        [{ ...hints, 'x-queue-mode': 'default' },
          `inequivalent arg 'x-queue-mode' ${where}: received 'default' but current is 'lazy'`],
        [{ ...hints, 'x-queue-version': 1 },
          `inequivalent arg 'x-queue-version' ${where}: received '1' but current is '2'`],
        [withoutLocator, `inequivalent arg 'x-queue-master-locator' ${where}: received none ` +
          "but current is the value 'min-masters' of type 'longstr'"],
      ];
      for (const [args, text] of refusals) {
        const channel = await conn.channel();
        const closed = await expectChannelError(conn, channel, 406,
          () => channel.queueDeclare(queue, { durable: true, args }));
        assert.ok(closed.text.includes(`PRECONDITION_FAILED - ${text}`), closed.text);
      }
    },
  },
  {
    name: 'queue.declare: a classic queue declared without hints refuses one added, ' +
      "and not a quorum queue's",
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('plain');
      await ch.queueDeclare(queue, { durable: true });
      // x-queue-type classic is what a queue without one is.
      await ch.queueDeclare(queue, { durable: true, args: { 'x-queue-type': 'classic' } });
      // A quorum queue's hints are not a classic queue's to compare.
      await ch.queueDeclare(queue, { durable: true, args: {
        'x-queue-leader-locator': 'random', 'x-quorum-initial-group-size': 3,
        'x-max-in-memory-length': 5, 'x-max-in-memory-bytes': 5,
        'x-dead-letter-strategy': 'at-least-once',
      } });
      const where = `for queue '${queue}' in vhost '/'`;
      for (const [name, value] of [['x-queue-mode', 'default'], ['x-queue-type', 'quorum']]) {
        const channel = await conn.channel();
        const closed = await expectChannelError(conn, channel, 406,
          () => channel.queueDeclare(queue, { durable: true, args: { [name]: value } }));
        const text = `PRECONDITION_FAILED - inequivalent arg '${name}' ${where}: ` +
          `received the value '${value}' of type 'longstr' but current is none`;
        assert.ok(closed.text.includes(text), closed.text);
      }
    },
  },
  {
    // A quorum queue's are another list: its leader locator, initial
    // group size, in-memory limits and dead-letter strategy.
    name: "queue.declare: a quorum queue's hints must be repeated as declared (406)",
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('quorum');
      const hints = {
        'x-queue-type': 'quorum', 'x-queue-leader-locator': 'random',
        'x-quorum-initial-group-size': 3, 'x-max-in-memory-length': 5,
        'x-max-in-memory-bytes': 4096, 'x-dead-letter-strategy': 'at-most-once',
      };
      await ch.queueDeclare(queue, { durable: true, args: hints });
      await ch.queueDeclare(queue, { durable: true, args: hints });
      // A classic queue's hints are not a quorum queue's to compare.
      await ch.queueDeclare(queue, { durable: true, args: {
        ...hints, 'x-queue-mode': 'lazy', 'x-queue-version': 1, 'x-queue-master-locator': 'random',
      } });
      const where = `for queue '${queue}' in vhost '/'`;
      const refusals: Array<[Record<string, unknown>, string]> = [
        [{ ...hints, 'x-queue-leader-locator': 'least-leaders' }, "x-queue-leader-locator' " +
          `${where}: received 'least-leaders' but current is 'random'`],
        [{ ...hints, 'x-quorum-initial-group-size': 5 },
          `x-quorum-initial-group-size' ${where}: received '5' but current is '3'`],
        [{ ...hints, 'x-max-in-memory-length': 6 },
          `x-max-in-memory-length' ${where}: received '6' but current is '5'`],
        [{ ...hints, 'x-max-in-memory-bytes': 8192 },
          `x-max-in-memory-bytes' ${where}: received '8192' but current is '4096'`],
        [{ ...hints, 'x-dead-letter-strategy': 'at-least-once' }, "x-dead-letter-strategy' " +
          `${where}: received 'at-least-once' but current is 'at-most-once'`],
        [{ ...hints, 'x-queue-type': 'classic' },
          `x-queue-type' ${where}: received 'classic' but current is 'quorum'`],
        [{}, `x-dead-letter-strategy' ${where}: received none but current is the value ` +
          "'at-most-once' of type 'longstr'"],
      ];
      for (const [args, text] of refusals) {
        const channel = await conn.channel();
        const closed = await expectChannelError(conn, channel, 406,
          () => channel.queueDeclare(queue, { durable: true, args }));
        assert.ok(closed.text.includes(`PRECONDITION_FAILED - inequivalent arg '${text}`),
          closed.text);
      }
    },
  },
  {
    name: 'queue.declare: the 406 reply text names the argument as RabbitMQ does',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('args');
      await ch.queueDeclare(queue, { args: { 'x-message-ttl': 60000 } });
      const closed = await expectChannelError(conn, ch, 406,
        () => ch.queueDeclare(queue, { args: { 'x-message-ttl': 30000 } }));
      assert.match(closed.text, new RegExp("inequivalent arg 'x-message-ttl' for queue '[^']+' " +
        "in vhost '/': received '30000' but current is '60000'"));
    },
  },
  {
    name: 'queue.declare: durable redeclared as transient is 406',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('durable');
      await ch.queueDeclare(queue, { durable: true });
      const closed = await expectChannelError(conn, ch, 406,
        () => ch.queueDeclare(queue, { durable: false }));
      assert.match(closed.text, /inequivalent arg 'durable'/);
    },
  },
  {
    name: 'queue.declare: auto-delete redeclared differently is 406',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('autodelete');
      await ch.queueDeclare(queue, { autoDelete: false });
      const closed = await expectChannelError(conn, ch, 406,
        () => ch.queueDeclare(queue, { autoDelete: true }));
      assert.match(closed.text, /inequivalent arg 'auto_delete'/);
    },
  },
  {
    name: 'queue.declare exclusive: the queue goes when its connection closes',
    async run(ctx) {
      const owner = await ctx.connect();
      const other = await ctx.connect();
      const queue = ctx.name('exclusive');
      await (await owner.channel()).queueDeclare(queue, { exclusive: true });
      assert.equal(await queueExists(owner, queue), true);
      await owner.close();
      await until('the exclusive queue to go', async () => !(await queueExists(other, queue)));
    },
  },
  {
    name: 'queue.declare exclusive: other connections are refused with 405',
    async run(ctx) {
      const owner = await ctx.connect();
      const queue = ctx.name('locked');
      await (await owner.channel()).queueDeclare(queue, { exclusive: true });
      const { conn, ch } = await ctx.open();
      await expectChannelError(conn, ch, 405, () => ch.queueDeclare(queue, { passive: true }));
      const ch2 = await conn.channel();
      await expectChannelError(conn, ch2, 405, () => ch2.consume(queue, {}, () => {}));
    },
  },
  {
    name: 'queue.declare auto-delete: the queue goes when its last consumer cancels',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('auto');
      await ch.queueDeclare(queue, { autoDelete: true });
      const a = await consumeInto(ch, queue);
      const b = await consumeInto(ch, queue);
      await ch.cancel(a.tag);
      assert.equal(await queueExists(conn, queue), true);
      await ch.cancel(b.tag);
      await until('the auto-delete queue to go', async () => !(await queueExists(conn, queue)));
    },
  },
  {
    name: 'queue.declare: an amq.* name is refused with 403; passive is 404',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = `amq.${ctx.name('reserved')}`;
      const closed = await expectChannelError(conn, ch, 403, () => ch.queueDeclare(queue));
      assert.match(closed.text, /reserved prefix/);
      const ch2 = await conn.channel();
      await expectChannelError(conn, ch2, 404, () => ch2.queueDeclare(queue, { passive: true }));
    },
  },
  {
    name: 'queue.declare: names with spaces, slashes and 255 bytes are accepted',
    async run(ctx) {
      const { ch } = await ctx.open();
      const names = [`${ctx.name('a')} b/c`, `${ctx.name('long')}.`.padEnd(255, 'x'), ctx.name('ü')];
      for (const queue of names) {
        assert.equal((await ch.queueDeclare(queue)).queue, queue);
        await ch.queueDelete(queue);
      }
    },
  },
  {
    name: 'queue.bind and queue.unbind: routing starts and stops; unbinding twice is fine',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const exchange = ctx.name('x');
      const queue = ctx.name('q');
      await ch.exchangeDeclare(exchange, 'direct');
      await ch.queueDeclare(queue);
      await ch.queueBind(queue, exchange, 'k');
      await ch.queueBind(queue, exchange, 'k');
      assert.deepEqual(await routedTo(conn, ch, exchange, 'k', [queue]), [queue]);
      await ch.queueUnbind(queue, exchange, 'k');
      assert.deepEqual(await routedTo(conn, ch, exchange, 'k', [queue]), []);
      await ch.queueUnbind(queue, exchange, 'k');
    },
  },
  {
    name: 'queue.bind: a missing exchange or queue is 404',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('q');
      const exchange = ctx.name('x');
      await ch.queueDeclare(queue);
      await ch.exchangeDeclare(exchange, 'fanout');
      await expectChannelError(conn, ch, 404, () => ch.queueBind(queue, ctx.name('nox'), ''));
      const ch2 = await conn.channel();
      await expectChannelError(conn, ch2, 404, () => ch2.queueBind(ctx.name('noq'), exchange, ''));
    },
  },
  {
    name: 'queue.bind and unbind on the default exchange are refused with 403',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('q');
      await ch.queueDeclare(queue);
      await expectChannelError(conn, ch, 403, () => ch.queueBind(queue, '', queue));
      const ch2 = await conn.channel();
      await expectChannelError(conn, ch2, 403, () => ch2.queueUnbind(queue, '', queue));
    },
  },
  {
    name: 'queue.purge: answers how many ready messages went',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('purge');
      await ch.queueDeclare(queue);
      await fill(conn, queue, ['a', 'b', 'c']);
      assert.equal(await ch.queuePurge(queue), 3);
      assert.equal(await ch.get(queue), null);
      assert.equal(await ch.queuePurge(queue), 0);
      await expectChannelError(conn, ch, 404, () => ch.queuePurge(ctx.name('missing')));
    },
  },
  {
    name: 'queue.delete: answers the message count; a missing queue is no error',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('delete');
      await ch.queueDeclare(queue);
      await fill(conn, queue, ['a', 'b']);
      assert.equal(await ch.queueDelete(queue), 2);
      assert.equal(await queueExists(conn, queue), false);
      assert.equal(await ch.queueDelete(queue), 0);
    },
  },
  {
    name: 'queue.delete if-unused: 406 while a consumer is on it',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('unused');
      await ch.queueDeclare(queue);
      const consumer = await conn.channel();
      const inbox = await consumeInto(consumer, queue);
      await expectChannelError(conn, ch, 406, () => ch.queueDelete(queue, { ifUnused: true }));
      await consumer.cancel(inbox.tag);
      const ch2 = await conn.channel();
      assert.equal(await ch2.queueDelete(queue, { ifUnused: true }), 0);
    },
  },
  {
    name: 'queue.delete if-empty: 406 while messages are ready',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('empty');
      await ch.queueDeclare(queue);
      await fill(conn, queue, ['a']);
      const closed = await expectChannelError(conn, ch, 406,
        () => ch.queueDelete(queue, { ifEmpty: true }));
      // RabbitMQ's text, which applications match on (a Java user's did).
      assert.match(closed.text, new RegExp(`queue '${queue}' in vhost '/' not empty`));
      const ch2 = await conn.channel();
      await ch2.queuePurge(queue);
      assert.equal(await ch2.queueDelete(queue, { ifEmpty: true }), 0);
    },
  },
  {
    name: 'queue.delete if-empty: unacked messages do not count',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('unacked');
      await ch.queueDeclare(queue);
      await fill(conn, queue, ['a']);
      const holder = await conn.channel();
      assert.ok((await holder.get(queue)) !== null);
      assert.equal(await ch.queueDelete(queue, { ifEmpty: true }), 0);
      assert.equal(await queueExists(conn, queue), false);
    },
  },
  {
    name: 'queue.purge, delete-ok and get-ok count ready messages; unacked ones stay',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const queue = ctx.name('ready');
      await ch.queueDeclare(queue);
      await fill(conn, queue, ['a', 'b', 'c', 'd']);
      const held = await ch.get(queue);
      assert.equal(held?.messageCount, 3);
      assert.equal((await ch.queueDeclare(queue, { passive: true })).messageCount, 3);
      assert.equal(await ch.queuePurge(queue), 3);
      ch.nack(held!.deliveryTag, false, true);
      const back = await ch.get(queue);
      assert.equal(back?.body, 'a');
      assert.equal(back?.redelivered, true);
      await fill(conn, queue, ['e', 'f']);
      assert.equal(await ch.queueDelete(queue), 2);
    },
  },
];

export const exchangeCases: Case[] = [
  {
    name: 'exchange.declare: every type; the same again is fine; another type is 406',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const names: string[] = [];
      for (const type of ['direct', 'fanout', 'topic', 'headers']) {
        const name = ctx.name(type);
        names.push(name);
        await ch.exchangeDeclare(name, type, { durable: true });
        await ch.exchangeDeclare(name, type, { durable: true });
      }
      const closed = await expectChannelError(conn, ch, 406,
        () => ch.exchangeDeclare(names[0], 'fanout', { durable: true }));
      assert.match(closed.text, /inequivalent arg 'type'/);
    },
  },
  {
    name: 'exchange.declare: durable, auto-delete or internal redeclared differently is 406',
    async run(ctx) {
      const conn = await ctx.connect();
      const exchange = ctx.name('flags');
      await (await conn.channel()).exchangeDeclare(exchange, 'topic', { durable: true });
      for (const flags of [{ durable: false }, { durable: true, autoDelete: true },
        { durable: true, internal: true }]) {
        const ch = await conn.channel();
        await expectChannelError(conn, ch, 406, () => ch.exchangeDeclare(exchange, 'topic', flags));
      }
    },
  },
  {
    name: 'exchange auto-delete: goes when its last binding goes',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const exchange = ctx.name('auto');
      const [a, b] = [ctx.name('a'), ctx.name('b')];
      await ch.exchangeDeclare(exchange, 'fanout', { autoDelete: true });
      for (const queue of [a, b]) {
        await ch.queueDeclare(queue);
        await ch.queueBind(queue, exchange, '');
      }
      await ch.queueUnbind(a, exchange, '');
      assert.equal(await exchangeExists(conn, exchange), true);
      await ch.queueUnbind(b, exchange, '');
      await until('the auto-delete exchange to go', async () => !(await exchangeExists(conn, exchange)));
    },
  },
  {
    name: 'exchange.declare passive: the amq.* built-ins exist; a missing one is 404',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      for (const name of ['amq.direct', 'amq.fanout', 'amq.topic', 'amq.headers', 'amq.match']) {
        await ch.exchangeDeclare(name, 'direct', { passive: true });
      }
      await expectChannelError(conn, ch, 404,
        () => ch.exchangeDeclare(ctx.name('missing'), 'direct', { passive: true }));
    },
  },
  {
    name: 'exchange.declare: a new amq.* name is 403; amq.direct as it is is fine',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      await ch.exchangeDeclare('amq.direct', 'direct', { durable: true });
      const closed = await expectChannelError(conn, ch, 403,
        () => ch.exchangeDeclare(`amq.${ctx.name('x')}`, 'direct'));
      assert.match(closed.text, /reserved prefix/);
    },
  },
  {
    name: 'exchange.declare: an unknown type closes the connection with 503',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      await expectConnectionError(conn, 503, () => ch.exchangeDeclare(ctx.name('x'), 'x-no-such-type'));
    },
  },
  {
    name: 'exchange.delete: if-unused 406 while bound; then gone; missing is fine',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const exchange = ctx.name('x');
      const queue = ctx.name('q');
      await ch.exchangeDeclare(exchange, 'fanout');
      await ch.queueDeclare(queue);
      await ch.queueBind(queue, exchange, '');
      await expectChannelError(conn, ch, 406, () => ch.exchangeDelete(exchange, { ifUnused: true }));
      const ch2 = await conn.channel();
      await ch2.exchangeDelete(exchange);
      assert.equal(await exchangeExists(conn, exchange), false);
      await ch2.exchangeDelete(exchange);
    },
  },
  {
    name: 'exchange.delete: the default exchange and amq.* are refused with 403',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      await expectChannelError(conn, ch, 403, () => ch.exchangeDelete('amq.direct'));
      const ch2 = await conn.channel();
      await expectChannelError(conn, ch2, 403, () => ch2.exchangeDelete(''));
    },
  },
  {
    name: 'routing: direct, fanout and the amq.* built-ins',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const a = ctx.name('a');
      const b = ctx.name('b');
      const fanout = ctx.name('fanout');
      const direct = ctx.name('direct');
      for (const queue of [a, b]) await ch.queueDeclare(queue);
      await ch.exchangeDeclare(fanout, 'fanout');
      await ch.exchangeDeclare(direct, 'direct');
      await ch.queueBind(a, fanout, 'ignored');
      await ch.queueBind(b, fanout, '');
      await ch.queueBind(a, direct, 'red');
      await ch.queueBind(b, direct, 'blue');
      await ch.queueBind(b, 'amq.direct', b);
      await ch.queueBind(a, 'amq.fanout', '');
      await ch.queueBind(a, 'amq.topic', `${a}.#`);
      assert.deepEqual(await routedTo(conn, ch, fanout, 'any', [a, b]), [a, b]);
      assert.deepEqual(await routedTo(conn, ch, direct, 'red', [a, b]), [a]);
      assert.deepEqual(await routedTo(conn, ch, direct, 'green', [a, b]), []);
      assert.deepEqual(await routedTo(conn, ch, '', a, [a, b]), [a]);
      assert.deepEqual(await routedTo(conn, ch, 'amq.direct', b, [a, b]), [b]);
      assert.deepEqual(await routedTo(conn, ch, 'amq.fanout', 'x', [a, b]), [a]);
      assert.deepEqual(await routedTo(conn, ch, 'amq.topic', `${a}.x.y`, [a, b]), [a]);
      for (const queue of [a, b]) await ch.queueDelete(queue);
    },
  },
  {
    name: 'routing: topic patterns with * and #',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const topic = ctx.name('topic');
      const [q1, q2, q3] = [ctx.name('q1'), ctx.name('q2'), ctx.name('q3')];
      await ch.exchangeDeclare(topic, 'topic');
      for (const queue of [q1, q2, q3]) await ch.queueDeclare(queue);
      await ch.queueBind(q1, topic, '*.orange.*');
      await ch.queueBind(q2, topic, '*.*.rabbit');
      await ch.queueBind(q2, topic, 'lazy.#');
      await ch.queueBind(q3, topic, '#');
      const all = [q1, q2, q3];
      assert.deepEqual(await routedTo(conn, ch, topic, 'quick.orange.rabbit', all), all);
      assert.deepEqual(await routedTo(conn, ch, topic, 'lazy.orange.elephant', all), all);
      assert.deepEqual(await routedTo(conn, ch, topic, 'quick.orange.fox', all), [q1, q3]);
      assert.deepEqual(await routedTo(conn, ch, topic, 'lazy', all), [q2, q3]);
      assert.deepEqual(await routedTo(conn, ch, topic, 'quick.orange.male.rabbit', all), [q3]);
      assert.deepEqual(await routedTo(conn, ch, topic, '', all), [q3]);
    },
  },
  {
    name: 'routing: headers exchange with x-match all and any; amq.match',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const headers = ctx.name('headers');
      const [all, any] = [ctx.name('all'), ctx.name('any')];
      await ch.exchangeDeclare(headers, 'headers');
      for (const queue of [all, any]) await ch.queueDeclare(queue);
      await ch.queueBind(all, headers, '', { 'x-match': 'all', format: 'pdf', type: 'report' });
      await ch.queueBind(any, headers, '', { 'x-match': 'any', format: 'pdf', type: 'log' });
      await ch.queueBind(any, 'amq.match', '', { 'x-match': 'all', colour: 'red' });
      const qs = [all, any];
      assert.deepEqual(await routedTo(conn, ch, headers, '', qs, { format: 'pdf', type: 'report' }), qs);
      assert.deepEqual(await routedTo(conn, ch, headers, '', qs, { format: 'pdf' }), [any]);
      assert.deepEqual(await routedTo(conn, ch, headers, '', qs, { type: 'log' }), [any]);
      assert.deepEqual(await routedTo(conn, ch, headers, '', qs, { other: 1 }), []);
      assert.deepEqual(await routedTo(conn, ch, 'amq.match', '', qs, { colour: 'red' }), [any]);
      for (const queue of qs) await ch.queueDelete(queue);
    },
  },
  {
    name: 'exchange.bind and unbind: exchange-to-exchange routing starts and stops',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const source = ctx.name('src');
      const destination = ctx.name('dst');
      const queue = ctx.name('q');
      await ch.exchangeDeclare(source, 'topic');
      await ch.exchangeDeclare(destination, 'fanout');
      await ch.queueDeclare(queue);
      await ch.queueBind(queue, destination, '');
      await ch.exchangeBind(destination, source, 'a.*');
      assert.deepEqual(await routedTo(conn, ch, source, 'a.b', [queue]), [queue]);
      assert.deepEqual(await routedTo(conn, ch, source, 'c.d', [queue]), []);
      await ch.exchangeUnbind(destination, source, 'a.*');
      assert.deepEqual(await routedTo(conn, ch, source, 'a.b', [queue]), []);
      await expectChannelError(conn, ch, 404, () => ch.exchangeBind(ctx.name('none'), source, ''));
    },
  },
  {
    name: 'exchange: internal exchanges route from others but refuse publishes (403)',
    async run(ctx) {
      const { conn, ch } = await ctx.open();
      const internal = ctx.name('internal');
      const front = ctx.name('front');
      const queue = ctx.name('q');
      await ch.exchangeDeclare(internal, 'fanout', { internal: true });
      await ch.exchangeDeclare(front, 'fanout');
      await ch.queueDeclare(queue);
      await ch.queueBind(queue, internal, '');
      await ch.exchangeBind(internal, front, '');
      assert.deepEqual(await routedTo(conn, ch, front, 'k', [queue]), [queue]);
      const pub = await conn.channel();
      await pub.publish(internal, 'k', 'x');
      const closed = await pub.closed;
      assert.equal(closed.code, 403, closed.text);
    },
  },
  {
    name: 'exchange: alternate-exchange takes what would be unroutable',
    async run(ctx) {
      const { ch } = await ctx.open();
      const main = ctx.name('main');
      const alternate = ctx.name('ae');
      const queue = ctx.name('q');
      await ch.exchangeDeclare(alternate, 'fanout');
      await ch.exchangeDeclare(main, 'direct', { args: { 'alternate-exchange': alternate } });
      await ch.queueDeclare(queue);
      await ch.queueBind(queue, alternate, '');
      let returned = 0;
      ch.onReturn(() => { returned++; });
      await ch.publish(main, 'nowhere', 'x', {}, true);
      await until('the message in the alternate queue', async () =>
        (await ch.queueDeclare(queue, { passive: true })).messageCount === 1);
      assert.equal(returned, 0);
    },
  },
];
