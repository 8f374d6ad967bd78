// AMQP logins and permissions with amqplib over real TCP on loopback: PLAIN
// and AMQPLAIN against the user store, connection.close 403 on a bad login,
// and channel.close 403 ACCESS_REFUSED on every queue and exchange
// operation the user lacks the permission for, with nothing published,
// consumed, purged or deleted as a result. Reply codes are RabbitMQ's.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { AMQPClient } from '@cloudamqp/amqp-client';
import amqp, { type ChannelModel } from 'amqplib';
import pino from 'pino';

import { Authenticator } from '../../src/auth/authenticator.js';
import { UserStore } from '../../src/auth/user-store.js';
import type { Broker } from '../../src/broker/broker.js';
import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import { openBroker, tempDir } from '../helpers.js';

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let server: AmqpServer;
let port: number;
let authenticator: Authenticator;
const models: ChannelModel[] = [];

const url = (user: string, password: string) =>
  `amqp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}`;

async function connectAs(user: string, password: string): Promise<ChannelModel> {
  const model = await amqp.connect(url(user, password));
  model.on('error', () => {});
  models.push(model);
  return model;
}

/** The reply code a refused operation closed its channel with. */
async function refusal(operation: Promise<unknown>): Promise<number> {
  try {
    await operation;
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

before(async () => {
  dir = tempDir('usher-amqp-auth-');
  broker = await openBroker(dir.path);
  const store = UserStore.inMemory();
  await store.addUser('orders', 'orders password', {
    permissions: { publish: ['orders.*'], consume: ['orders.*'], manage: ['orders.*'] },
  });
  await store.addUser('reader', 'reader password', {
    permissions: { publish: [], consume: ['orders.*'], manage: [] },
  });
  authenticator = new Authenticator({ store, logger: pino({ level: 'silent' }) });
  server = await createAmqpServer({
    broker,
    logger: pino({ level: 'silent' }),
    dataDir: dir.path,
    maxMessageBytes: 1024 * 1024,
    authenticator,
  });
  port = (await server.listen(0, '127.0.0.1')).port;
  await broker.createQueue('secret.q', { maxAttempts: 0 });
  await broker.publish('secret.q', [{ body: Buffer.from('kept'), headers: {} }]);
});

after(async () => {
  for (const model of models) await model.close().catch(() => {});
  await server.close();
  await broker.close();
  dir.remove();
});

describe('AMQP login', () => {
  it('accepts a user over PLAIN and over AMQPLAIN', async () => {
    const plain = await connectAs('orders', 'orders password');
    await (await plain.createChannel()).assertQueue('orders.plain');

    const amqplain = await amqp.connect(`amqp://127.0.0.1:${port}`, {
      credentials: amqp.credentials.amqplain('orders', 'orders password'),
    });
    models.push(amqplain);
    await (await amqplain.createChannel()).assertQueue('orders.amqplain');
  });

  it('refuses wrong passwords and unknown users with 403, over PLAIN and AMQPLAIN', async () => {
    const before = authenticator.failures().amqp;
    for (const [user, password] of [
      ['orders', 'wrong password'],
      ['nobody', 'whatever pw'],
    ]) {
      await assert.rejects(amqp.connect(url(user, password)), (err: Error) => {
        assert.match(err.message, /403|ACCESS_REFUSED/);
        return true;
      });
    }
    await assert.rejects(
      amqp.connect(`amqp://127.0.0.1:${port}`, {
        credentials: amqp.credentials.amqplain('orders', 'bad'),
      }),
      /ACCESS_REFUSED|403/,
    );
    assert.equal(authenticator.failures().amqp, before + 3);
  });
});

describe('AMQP permissions', () => {
  it('refuses declare, bind, purge, delete, publish, consume and get without permission', async () => {
    const model = await connectAs('reader', 'reader password');
    const attempts: [string, (ch: amqp.Channel) => Promise<unknown>][] = [
      ['declare', (ch) => ch.assertQueue('secret.q')],
      ['declare own pattern without manage', (ch) => ch.assertQueue('orders.new')],
      ['passive declare', (ch) => ch.checkQueue('secret.q')],
      ['bind', (ch) => ch.bindQueue('secret.q', 'amq.direct', 'k')],
      ['unbind', (ch) => ch.unbindQueue('secret.q', 'amq.direct', 'k')],
      ['purge', (ch) => ch.purgeQueue('secret.q')],
      ['delete', (ch) => ch.deleteQueue('secret.q')],
      ['exchange declare', (ch) => ch.assertExchange('secret.x', 'direct')],
      ['exchange delete', (ch) => ch.deleteExchange('amq.direct')],
      ['exchange bind', (ch) => ch.bindExchange('secret.x', 'amq.direct', 'k')],
      ['consume', (ch) => ch.consume('secret.q', () => {})],
      ['get', (ch) => ch.get('secret.q')],
      [
        'publish (confirmed)',
        async (ch) => {
          const confirm = ch as amqp.ConfirmChannel;
          confirm.sendToQueue('secret.q', Buffer.from('intruder'));
          await confirm.waitForConfirms();
        },
      ],
    ];
    for (const [name, attempt] of attempts) {
      const channel =
        name === 'publish (confirmed)' ? await model.createConfirmChannel() : await model.createChannel();
      channel.on('error', () => {});
      const closed = new Promise<number>((resolve) =>
        channel.once('close', () => resolve(0)).once('error', (err: { code: number }) => resolve(err.code)),
      );
      await refusal(attempt(channel));
      assert.equal(await closed, 403, name);
    }

    // The connection carries on; nothing was changed.
    const channel = await model.createChannel();
    assert.equal((await channel.checkQueue('orders.plain')).queue, 'orders.plain');
    const queue = broker.getQueue('secret.q');
    assert.equal(queue.stats.total, 1);
    assert.equal(queue.stats.delivered, 0);
    assert.equal(queue.stats.published, 1);
  });

  it('lets a user publish to and consume from its own queues', async () => {
    const model = await connectAs('orders', 'orders password');
    const channel = await model.createConfirmChannel();
    await channel.assertQueue('orders.mine');
    channel.sendToQueue('orders.mine', Buffer.from('mine'));
    await channel.waitForConfirms();
    const got = await channel.get('orders.mine', { noAck: true });
    assert.ok(got !== false);
    assert.equal(got.content.toString(), 'mine');
  });

  it('refuses a publish through an exchange that routes to a forbidden queue', async () => {
    const model = await connectAs('orders', 'orders password');
    const setup = await model.createChannel();
    await setup.assertExchange('orders.fanout', 'fanout');
    await setup.assertQueue('orders.fan1');
    await setup.bindQueue('orders.fan1', 'orders.fanout', '');
    // The guest (loopback) binds a queue the user may not publish to.
    const guest = await connectAs('guest', 'guest');
    await (await guest.createChannel()).bindQueue('secret.q', 'orders.fanout', '');

    const channel = await model.createConfirmChannel();
    channel.on('error', () => {});
    const closed = new Promise<number>((resolve) =>
      channel.once('error', (err: { code: number }) => resolve(err.code)),
    );
    channel.publish('orders.fanout', '', Buffer.from('spread'));
    await refusal(channel.waitForConfirms());
    assert.equal(await closed, 403);
    assert.equal(broker.getQueue('orders.fan1').stats.total, 0, 'nothing stored anywhere');
    assert.equal(broker.getQueue('secret.q').stats.total, 1);
  });

  it('lets only a user allowed to publish to a reply name reply to it (direct reply-to)', {
    timeout: 10_000,
  }, async () => {
    // The caller, as the guest, gets a reply name; a server may reply to
    // it only with publish on that name (a pattern such as
    // amq.rabbitmq.reply-to.*): any user could, knowing it (breaker).
    const guest = await connectAs('guest', 'guest');
    const caller = await guest.createChannel();
    const replies: string[] = [];
    await caller.consume('amq.rabbitmq.reply-to', (m) => {
      if (m !== null) replies.push(m.content.toString());
    }, { noAck: true });
    await caller.assertQueue('orders.rpc');
    caller.sendToQueue('orders.rpc', Buffer.from('ask'), { replyTo: 'amq.rabbitmq.reply-to' });
    const requests = await (await connectAs('orders', 'orders password')).createChannel();
    let request: amqp.GetMessage | false = false;
    for (let i = 0; i < 100 && request === false; i++) {
      request = await requests.get('orders.rpc', { noAck: true });
      if (request === false) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(request !== false, 'the request arrived');
    const name = String(request.properties.replyTo);

    const server = await (await connectAs('orders', 'orders password')).createConfirmChannel();
    server.on('error', () => {});
    const closed = new Promise<number>((resolve) =>
      server.once('error', (err: { code: number }) => resolve(err.code)),
    );
    server.publish('', name, Buffer.from('forged'));
    await refusal(server.waitForConfirms());
    assert.equal(await closed, 403);

    const allowed = await (await connectAs('guest', 'guest')).createConfirmChannel();
    allowed.publish('', name, Buffer.from('answer'));
    await allowed.waitForConfirms();
    for (let i = 0; i < 100 && replies.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.deepEqual(replies, ['answer']);
  });

  it('refuses a publish in a transaction to a forbidden queue at once, storing none of it', async () => {
    const setup = await (await connectAs('orders', 'orders password')).createChannel();
    await setup.assertQueue('orders.tx');
    await setup.bindQueue('orders.tx', 'amq.direct', 'orders.tx');
    const guest = await (await connectAs('guest', 'guest')).createChannel();
    await guest.bindQueue('secret.q', 'amq.direct', 'secret.tx');
    const client = new AMQPClient(url('orders', 'orders password'));
    await client.connect();
    try {
      const channel = await client.channel();
      await channel.txSelect();
      await channel.basicPublish('amq.direct', 'orders.tx', 'allowed');
      await channel.basicPublish('amq.direct', 'secret.tx', 'forbidden');
      await new Promise((resolve) => setTimeout(resolve, 200));
      // Refused at the publish, as RabbitMQ refuses one; a commit sent
      // after it finds the channel closed, and nothing stored. It used to
      // be refused at the commit, the allowed publish stored by then.
      const code = await refusal(channel.txCommit());
      // Time for anything handed over to land.
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.ok(channel.closed, 'the channel is closed');
      assert.notEqual(code, 0, 'the commit failed');
      assert.equal(broker.getQueue('orders.tx').stats.total, 0, 'half a transaction stored');
      assert.equal(broker.getQueue('secret.q').stats.total, 1);
    } finally {
      await client.close().catch(() => {});
    }
  });

  it('routes no dead letter by its CC keys into a queue its publisher may not publish to', async () => {
    const guest = await (await connectAs('guest', 'guest')).createChannel();
    await guest.bindQueue('secret.q', 'amq.direct', 'secret');
    const model = await connectAs('orders', 'orders password');
    const setup = await model.createChannel();
    await setup.assertQueue('orders.dying', {
      arguments: { 'x-dead-letter-exchange': 'amq.direct', 'x-message-ttl': 50 },
    });
    await setup.assertQueue('orders.dead');
    await setup.bindQueue('orders.dead', 'amq.direct', 'orders.dying');
    const channel = await model.createConfirmChannel();
    channel.publish('', 'orders.dying', Buffer.from('x'), { headers: { CC: ['secret'] } });
    await channel.waitForConfirms();

    for (let waited = 0; broker.getQueue('orders.dead').stats.total === 0 && waited < 3000; waited += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(broker.getQueue('orders.dead').stats.total, 1, 'dead-lettered by its own key');
    assert.equal(broker.getQueue('secret.q').stats.total, 1, 'the CC key routed it to secret.q');
  });

  it('takes a user-id naming the login and refuses another with 406, storing nothing', {
    timeout: 10_000,
  }, async () => {
    const model = await connectAs('orders', 'orders password');
    const channel = await model.createConfirmChannel();
    await channel.assertQueue('orders.signed');
    channel.sendToQueue('orders.signed', Buffer.from('mine'), { userId: 'orders' });
    await channel.waitForConfirms();
    const got = await channel.get('orders.signed', { noAck: true });
    assert.ok(got !== false);
    assert.equal(got.properties.userId, 'orders');

    channel.on('error', () => {});
    const closed = new Promise<{ code: number; message: string }>((resolve) =>
      channel.once('error', resolve));
    channel.sendToQueue('orders.signed', Buffer.from('forged'), { userId: 'reader' });
    await refusal(channel.waitForConfirms());
    const error = await closed;
    assert.equal(error.code, 406);
    assert.match(error.message,
      /user_id property set to 'reader' but authenticated user was 'orders'/);
    assert.equal(broker.getQueue('orders.signed').stats.total, 0, 'the forged one is not stored');
  });

  // A header entry named user-id was stored as the text header that
  // carries the property, and came back as the property (breaker).
  it('delivers a user-id header as a header, never as the user-id property', {
    timeout: 10_000,
  }, async () => {
    const model = await connectAs('orders', 'orders password');
    const channel = await model.createConfirmChannel();
    await channel.assertQueue('orders.headed');
    channel.sendToQueue('orders.headed', Buffer.from('header only'), { headers: { 'user-id': 'root' } });
    channel.sendToQueue('orders.headed', Buffer.from('both'),
      { userId: 'orders', headers: { 'user-id': 'root' } });
    await channel.waitForConfirms();

    // HTTP readers see the property's header, the publisher's own.
    const stored = broker.peek('orders.headed', { limit: 2, offset: 0 });
    assert.deepEqual(stored.map((m) => m.headers['user-id']), [undefined, 'orders']);

    const headerOnly = await channel.get('orders.headed', { noAck: true });
    assert.ok(headerOnly !== false);
    assert.equal(headerOnly.properties.userId, undefined);
    assert.equal(headerOnly.properties.headers?.['user-id'], 'root');
    const both = await channel.get('orders.headed', { noAck: true });
    assert.ok(both !== false);
    assert.equal(both.properties.userId, 'orders');
    assert.equal(both.properties.headers?.['user-id'], 'root');
    await channel.deleteQueue('orders.headed');
  });

  it('closes a connection with 320 once its user is deleted', async () => {
    await authenticator.store.addUser('leaver', 'leaver password', {
      permissions: { publish: ['orders.*'], consume: [], manage: [] },
    });
    const model = await amqp.connect(url('leaver', 'leaver password'));
    const closed = new Promise<string>((resolve) => {
      model.on('error', (err: Error) => resolve(err.message));
      model.on('close', (err?: Error) => resolve(err?.message ?? 'closed'));
    });
    await authenticator.store.deleteUser('leaver');
    assert.match(await closed, /320|CONNECTION_FORCED|deleted or changed/);
  });
});
