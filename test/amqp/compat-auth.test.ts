// Reply codes of refused logins and operations, checked against a real
// RabbitMQ (started on loopback by bench/rabbitmq.sh, as the compat suite
// does): the same user with the same rights on both brokers, the same
// operations, the same codes. RabbitMQ's rights are regexes for
// configure/write/read; Usher's are globs for manage/publish/consume. Two
// differences on purpose, so that AMQP enforces what HTTP does:
//   - RabbitMQ checks a publish against the exchange (write on
//     amq.default), Usher against every queue the message reaches: a
//     publish to a queue outside the user's patterns is refused by Usher
//     and accepted by RabbitMQ;
//   - RabbitMQ answers a passive declare of any queue (its existence,
//     depth and consumers); Usher needs some permission on it, as
//     GET /queues/{name} does.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import amqp from 'amqplib';
import pino from 'pino';

import { Authenticator } from '../../src/auth/authenticator.js';
import { UserStore } from '../../src/auth/user-store.js';
import { createAmqpServer } from '../../src/amqp/server.js';
import { openBroker, tempDir } from '../helpers.js';
import { startRabbit, type RunningTarget } from './compat/targets.js';

const USER = 'limited';
const PASSWORD = 'limited password';

interface Target {
  name: string;
  port: number;
  stop(): Promise<void>;
}

async function startUsherWithUser(): Promise<Target> {
  const dir = tempDir('usher-compat-auth-');
  const broker = await openBroker(dir.path);
  const store = UserStore.inMemory();
  await store.addUser(USER, PASSWORD, {
    permissions: { publish: ['orders.*'], consume: ['orders.*'], manage: ['orders.*'] },
  });
  const server = await createAmqpServer({
    broker,
    logger: pino({ level: 'silent' }),
    dataDir: dir.path,
    maxMessageBytes: 1 << 20,
    authenticator: new Authenticator({ store }),
  });
  const { port } = await server.listen(0, '127.0.0.1');
  return {
    name: 'usher',
    port,
    async stop() {
      await server.close();
      await broker.close();
      dir.remove();
    },
  };
}

async function startRabbitWithUser(): Promise<Target> {
  const rabbit: RunningTarget = await startRabbit();
  try {
    await rabbit.ctl!(['add_user', USER, PASSWORD]);
    await rabbit.ctl!([
      'set_permissions', '-p', '/', USER,
      '^orders\\..*', '^(orders\\..*|amq\\.default)$', '^orders\\..*',
    ]);
  } catch (err) {
    await rabbit.stop();
    throw err;
  }
  return { name: 'rabbitmq', port: Number(new URL(rabbit.url).port), stop: () => rabbit.stop() };
}

/** The reply code an operation ends with: 0 when it succeeds. */
async function codeOf(port: number, user: string, password: string, operation: string): Promise<number> {
  let model: amqp.ChannelModel;
  try {
    model = await amqp.connect(`amqp://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}`);
  } catch (err) {
    const match = /\b(403|530)\b|ACCESS_REFUSED/.exec(String((err as Error).message));
    return match === null ? -1 : match[1] === undefined ? 403 : Number(match[1]);
  }
  model.on('error', () => {});
  const channel = await model.createConfirmChannel();
  const closed = new Promise<number>((resolve) => {
    channel.on('error', (err: { code?: number }) => resolve(err.code ?? -1));
    channel.on('close', () => resolve(0));
  });
  let failed = false;
  try {
    await OPERATIONS[operation](channel);
  } catch {
    failed = true;
  }
  const code = failed ? await closed : 0;
  await model.close().catch(() => {});
  return code;
}

const OPERATIONS: Record<string, (ch: amqp.ConfirmChannel) => Promise<unknown>> = {
  'declare own queue': (ch) => ch.assertQueue('orders.mine', { durable: false }),
  'declare other queue': (ch) => ch.assertQueue('secret.q', { durable: false }),
  'purge other queue': (ch) => ch.purgeQueue('secret.q'),
  'delete other queue': (ch) => ch.deleteQueue('secret.q'),
  'bind other queue': (ch) => ch.bindQueue('secret.q', 'amq.direct', 'k'),
  'consume other queue': (ch) => ch.consume('secret.q', () => {}),
  'get other queue': (ch) => ch.get('secret.q'),
  'declare other exchange': (ch) => ch.assertExchange('secret.x', 'direct', { durable: false }),
  'passive declare other queue': (ch) => ch.checkQueue('secret.q'),
  'publish to other queue': async (ch) => {
    ch.sendToQueue('secret.q', Buffer.from('x'));
    await ch.waitForConfirms();
  },
  'publish to own queue': async (ch) => {
    await ch.assertQueue('orders.mine', { durable: false });
    ch.sendToQueue('orders.mine', Buffer.from('x'));
    await ch.waitForConfirms();
  },
};

const rabbitAvailable = (): boolean => process.env.USHER_SKIP_RABBIT !== '1';

describe('AMQP access reply codes, Usher against RabbitMQ', { skip: !rabbitAvailable() }, () => {
  const targets: Target[] = [];
  const codes = new Map<string, Record<string, number>>();

  before(async () => {
    targets.push(await startUsherWithUser(), await startRabbitWithUser());
    for (const target of targets) {
      // The administrator (guest, loopback) makes the queue the user may not touch.
      const admin = await amqp.connect(`amqp://guest:guest@127.0.0.1:${target.port}`);
      await (await admin.createChannel()).assertQueue('secret.q', { durable: false });
      await admin.close();

      const row: Record<string, number> = {
        'wrong password': await codeOf(target.port, USER, 'not the password', ''),
      };
      for (const operation of Object.keys(OPERATIONS)) {
        row[operation] = await codeOf(target.port, USER, PASSWORD, operation);
      }
      codes.set(target.name, row);
    }
  });

  after(async () => {
    for (const target of targets) await target.stop();
  });

  it('answers every refused login and operation with the code RabbitMQ gives', (t) => {
    const usher = codes.get('usher')!;
    const rabbit = codes.get('rabbitmq')!;
    t.diagnostic(JSON.stringify({ usher, rabbit }));
    // The differences on purpose (see the top of this file).
    for (const operation of ['publish to other queue', 'passive declare other queue']) {
      assert.equal(usher[operation], 403, operation);
      assert.equal(rabbit[operation], 0, operation);
      delete rabbit[operation];
    }
    for (const [operation, code] of Object.entries(rabbit)) {
      assert.equal(usher[operation], code, `${operation}: Usher ${usher[operation]}, RabbitMQ ${code}`);
    }
    assert.equal(rabbit['wrong password'], 403);
    assert.equal(rabbit['declare other queue'], 403);
    assert.equal(rabbit['declare own queue'], 0);
  });
});
