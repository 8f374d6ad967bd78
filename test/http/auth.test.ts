// HTTP authentication and authorization over every registered route:
// without credentials, with wrong ones, and with valid ones that lack the
// permission, each route answers 401 or 403 with the error envelope, and
// nothing is published, consumed or changed as a result. Requests come
// from a non-loopback address (inject's remoteAddress) unless noted.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import pino from 'pino';

import { Authenticator } from '../../src/auth/authenticator.js';
import { DEFAULT_LIMITER_POLICY, LoginLimiter } from '../../src/auth/login-limiter.js';
import { UserStore } from '../../src/auth/user-store.js';
import type { Broker } from '../../src/broker/broker.js';
import { routesCheckedBy } from '../../src/http/auth-hook.js';
import { ruleFor, tabledRoutes } from '../../src/http/route-permissions.js';
import { createHttpServer } from '../../src/http/server.js';
import { openBroker, tempDir } from '../helpers.js';

import type { FastifyInstance, InjectOptions } from 'fastify';

const REMOTE = '10.20.30.40';
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let app: FastifyInstance;
let store: UserStore;
let logs: Record<string, unknown>[];

before(async () => {
  dir = tempDir('usher-http-auth-');
  logs = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => logs.push(JSON.parse(l)) });
  broker = await openBroker(dir.path);
  store = UserStore.inMemory();
  await store.addUser('root', 'root password', {
    admin: true,
    permissions: { publish: ['*'], consume: ['*'], manage: ['*'] },
  });
  await store.addUser('orders', 'orders password', {
    permissions: { publish: ['orders.*'], consume: ['orders.*'], manage: [] },
  });
  await store.addUser('nobody', 'nobody password', {
    permissions: { publish: [], consume: [], manage: [] },
  });
  // Short delays: the lockout test runs through them.
  const limiter = new LoginLimiter({ ...DEFAULT_LIMITER_POLICY, baseDelayMs: 1, maxDelayMs: 4 });
  const authenticator = new Authenticator({ store, logger, limiter });
  app = createHttpServer(broker, { logger, processMetrics: false, authenticator });
  await app.ready();
  await broker.createQueue('secret.q', {});
  await broker.publish('secret.q', [{ body: Buffer.from('kept'), headers: {} }]);
  await broker.createQueue('orders.paid', {});
});

after(async () => {
  await app.close();
  await broker.close();
  dir.remove();
});

async function send(
  method: string,
  url: string,
  options: { authorization?: string; from?: string; body?: unknown } = {},
) {
  const headers: Record<string, string> = {};
  if (options.authorization !== undefined) headers.authorization = options.authorization;
  const inject: InjectOptions = {
    method: method as InjectOptions['method'],
    url,
    headers,
    remoteAddress: options.from ?? REMOTE,
  };
  if (options.body !== undefined) {
    headers['content-type'] = 'application/json';
    inject.payload = JSON.stringify(options.body);
  }
  const response = await app.inject(inject);
  const body = response.body === '' ? undefined : safeJson(response.body);
  return { status: response.statusCode, headers: response.headers, body };
}

function safeJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A concrete URL for a route pattern, aimed at the protected queue. */
function concrete(url: string): string {
  return url
    .replace(':name', 'secret.q')
    .replace(':user', 'someone')
    .replace(':token', 'sometoken');
}

/** A body that passes each route's schema, so refusals are not 400s. */
function bodyFor(method: string, url: string): unknown {
  if (method === 'GET' || method === 'HEAD' || method === 'DELETE') return undefined;
  if (url.endsWith('/messages/batch')) return { messages: [{ body: 'x' }] };
  if (url.endsWith('/messages')) return { body: 'x' };
  if (url.endsWith('/ack')) return { receipt: 'r' };
  if (url.endsWith('/nack') || url.endsWith('/release')) return { receipt: 'r' };
  if (url.endsWith('/extend')) return { receipt: 'r', visibilityTimeoutMs: 1000 };
  if (url.endsWith('/password')) return { password: 'new password' };
  if (url.startsWith('/admin/users')) return { password: 'long enough password' };
  return {};
}

describe('HTTP authentication on every route', () => {
  it('has a rule for every registered route and no rule for a route that is gone', () => {
    const routes = routesCheckedBy(app);
    assert.ok(routes.length >= 20, `only ${routes.length} routes seen`);
    for (const route of routes) {
      const [method, url] = route.split(' ');
      assert.ok(ruleFor(method, url) !== undefined, `${route} has no rule`);
    }
    const served = new Set(routes);
    for (const tabled of tabledRoutes()) assert.ok(served.has(tabled), `${tabled} is not served`);
  });

  it('refuses a route without a rule at registration', async () => {
    const other = createHttpServer(broker, { logger: pino({ level: 'silent' }), processMetrics: false });
    assert.throws(() => other.get('/unprotected', async () => 'oops'), /no permission rule/);
    await other.close();
  });

  it('answers 401 with WWW-Authenticate without credentials or with wrong ones', async () => {
    const attempts = [
      undefined,
      basic('root', 'wrong password'),
      basic('nosuchuser', 'whatever pw'),
      basic('guest', 'guest'),
      'Bearer usher_notatoken',
      'Digest abc',
      'Basic !!!notbase64',
    ];
    for (const route of routesCheckedBy(app)) {
      const [method, url] = route.split(' ');
      const rule = ruleFor(method, url);
      if (rule?.need === 'public') continue;
      // Each route with one attempt, rotating, so the limiter stays quiet.
      const authorization = attempts[routesCheckedBy(app).indexOf(route) % attempts.length];
      const answer = await send(method, concrete(url), {
        authorization,
        body: bodyFor(method, url),
        from: `10.9.${routesCheckedBy(app).indexOf(route)}.1`,
      });
      assert.equal(answer.status, 401, `${route} with ${authorization}: ${JSON.stringify(answer.body)}`);
      assert.ok(String(answer.headers['www-authenticate']).includes('Basic realm="usher"'), route);
      if (method !== 'HEAD') assert.equal(answer.body.error.code, 'UNAUTHENTICATED', route);
    }
  });

  it('answers 403 to a valid user lacking the permission, on every protected route', async () => {
    for (const route of routesCheckedBy(app)) {
      const [method, url] = route.split(' ');
      const rule = ruleFor(method, url);
      if (rule?.need === 'public' || rule?.need === 'login') continue;
      const answer = await send(method, concrete(url), {
        authorization: basic('orders', 'orders password'),
        body: bodyFor(method, url),
      });
      assert.equal(answer.status, 403, `${route}: ${JSON.stringify(answer.body)}`);
      if (method !== 'HEAD') assert.equal(answer.body.error.code, 'ACCESS_REFUSED', route);
    }
  });

  it('changed nothing while refusing', async () => {
    const queue = broker.getQueue('secret.q');
    assert.equal(queue.stats.total, 1);
    assert.equal(queue.stats.delivered, 0);
    assert.equal(store.user('someone'), undefined);
    assert.deepEqual(store.listTokens(), []);
  });

  it('keeps /healthz and /metrics public', async () => {
    assert.equal((await send('GET', '/healthz')).status, 200);
    assert.equal((await send('GET', '/metrics')).status, 200);
  });
});

describe('HTTP permissions', () => {
  const orders = basic('orders', 'orders password');

  it('lets a user publish and consume on its own queues only', async () => {
    const published = await send('POST', '/queues/orders.paid/messages', {
      authorization: orders,
      body: { body: 'hello' },
    });
    assert.equal(published.status, 201, JSON.stringify(published.body));
    const received = await send('POST', '/queues/orders.paid/receive', {
      authorization: orders,
      body: { max: 1 },
    });
    assert.equal(received.status, 200);
    assert.equal(received.body.messages.length, 1);

    const refused = await send('POST', '/queues/secret.q/receive', {
      authorization: orders,
      body: { max: 1 },
    });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.field, 'queue');
    assert.match(refused.body.error.message, /user "orders" may not consume from queue "secret.q"/);
  });

  // An AMQP consumer reads the user-id header as the user-id property,
  // which RabbitMQ (and Usher over AMQP) lets name only the publisher.
  it('takes a user-id header naming the login and refuses another with 403, storing nothing', async () => {
    await broker.createQueue('orders.signed', {});
    const own = await send('POST', '/queues/orders.signed/messages', {
      authorization: orders,
      body: { body: 'mine', headers: { 'user-id': 'orders' } },
    });
    assert.equal(own.status, 201, JSON.stringify(own.body));

    const forged = await send('POST', '/queues/orders.signed/messages/batch', {
      authorization: orders,
      body: { messages: [{ body: 'fine' }, { body: 'forged', headers: { 'user-id': 'root' } }] },
    });
    assert.equal(forged.status, 403, JSON.stringify(forged.body));
    assert.equal(forged.body.error.code, 'ACCESS_REFUSED');
    assert.equal(forged.body.error.field, 'messages.1.headers.user-id');
    assert.match(forged.body.error.message, /'root' but the request is authenticated as 'orders'/);

    const guest = await send('POST', '/queues/orders.signed/messages', {
      from: '127.0.0.1',
      body: { body: 'guest', headers: { 'user-id': 'orders' } },
    });
    assert.equal(guest.status, 403, JSON.stringify(guest.body));
    assert.equal(guest.body.error.field, 'headers.user-id');

    const stored = broker.peek('orders.signed', { limit: 10, offset: 0 }).map((m) => m.body.toString());
    assert.deepEqual(stored, ['mine']);
    await broker.deleteQueue('orders.signed');
  });

  it('names no queue a user may not see when it settles a receipt of that queue', async () => {
    const root = basic('root', 'root password');
    const leased = await send('POST', '/queues/secret.q/receive', {
      authorization: root,
      body: { max: 1 },
    });
    const { receipt } = leased.body.messages[0];

    for (const [route, body] of [
      ['ack', { receipt }],
      ['nack', { receipt }],
      ['extend', { receipt, timeoutMs: 1000 }],
    ] as const) {
      const answer = await send('POST', `/queues/orders.paid/${route}`, {
        authorization: orders,
        body,
      });
      assert.equal(answer.status, 404, route);
      assert.doesNotMatch(answer.body.error.message, /secret/, route);
    }
    const released = await send('POST', '/queues/secret.q/release', {
      authorization: root,
      body: { receipts: [receipt] },
    });
    assert.deepEqual(released.body, { released: 1 }, 'the lease was left as it was');
  });

  it('lists only the queues a user may see', async () => {
    const listed = await send('GET', '/queues', { authorization: orders });
    assert.deepEqual(
      listed.body.queues.map((q: { name: string }) => q.name),
      ['orders.paid'],
    );
    const none = await send('GET', '/queues', { authorization: basic('nobody', 'nobody password') });
    assert.deepEqual(none.body.queues, []);
  });

  it('checks redrive `to` for publish', async () => {
    await broker.createQueue('orders.dlq', {});
    // A dead-letter queue, or the redrive is refused before any `to`.
    await broker.createQueue('redrive.src', { deadLetter: 'orders.dlq' });
    await store.addUser('dlqadmin', 'dlq password', {
      permissions: { publish: [], consume: [], manage: ['orders.dlq'] },
    });
    const answer = await send('POST', '/queues/orders.dlq/redrive', {
      authorization: basic('dlqadmin', 'dlq password'),
      body: { to: 'secret.q' },
    });
    assert.equal(answer.status, 403);
    assert.equal(answer.body.error.field, 'to');
  });

  it('checks redrive without `to` for publish on each queue the messages died in', async () => {
    await broker.createQueue('locked.src', { deadLetter: 'locked.dlq' });
    await broker.publish('locked.src', [{ id: 'died', body: Buffer.from('x'), headers: {} }]);
    const [leased] = await broker.receive('locked.src', { max: 1, waitMs: 0 });
    await broker.nack('locked.src', leased.receipt, { requeue: false });
    await store.addUser('dlqonly', 'dlqonly password', {
      permissions: { publish: [], consume: [], manage: ['locked.dlq'] },
    });
    await store.addUser('dlqandsrc', 'dlqandsrc password', {
      permissions: { publish: ['locked.src'], consume: [], manage: ['locked.dlq'] },
    });

    const refused = await send('POST', '/queues/locked.dlq/redrive', {
      authorization: basic('dlqonly', 'dlqonly password'),
      body: {},
    });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.field, 'to');
    assert.match(refused.body.error.message, /may not publish to queue "locked.src"/);
    assert.equal(broker.getQueue('locked.dlq').stats.ready, 1, 'a refused redrive moved messages');

    const allowed = await send('POST', '/queues/locked.dlq/redrive', {
      authorization: basic('dlqandsrc', 'dlqandsrc password'),
      body: {},
    });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.body.moved, 1);
    assert.equal(broker.getQueue('locked.src').stats.ready, 1);
  });

  it('accepts bearer tokens created by an admin, shown once', async () => {
    const root = basic('root', 'root password');
    const created = await send('PUT', '/admin/tokens/ci', {
      authorization: root,
      body: { permissions: { publish: ['orders.*'] } },
    });
    assert.equal(created.status, 201);
    const bearer = `Bearer ${created.body.token}`;
    const listed = await send('GET', '/admin/tokens', { authorization: root });
    assert.ok(!JSON.stringify(listed.body).includes(created.body.token.slice(20)));

    const ok = await send('POST', '/queues/orders.paid/messages', {
      authorization: bearer,
      body: { body: 'via token' },
    });
    assert.equal(ok.status, 201);
    const refused = await send('POST', '/queues/orders.paid/receive', {
      authorization: bearer,
      body: {},
    });
    assert.equal(refused.status, 403);
    assert.equal((await send('GET', '/admin/users', { authorization: bearer })).status, 403);

    assert.equal((await send('DELETE', '/admin/tokens/ci', { authorization: root })).status, 204);
    assert.equal(
      (await send('POST', '/queues/orders.paid/messages', { authorization: bearer, body: { body: 'x' } }))
        .status,
      401,
    );
  });

  it('lets an admin add a user whose login works at once, and delete it', async () => {
    const root = basic('root', 'root password');
    const added = await send('PUT', '/admin/users/newbie', {
      authorization: root,
      body: { password: 'newbie password', permissions: { consume: ['orders.*'] } },
    });
    assert.equal(added.status, 201, JSON.stringify(added.body));
    assert.equal(added.body.password, undefined);
    const newbie = basic('newbie', 'newbie password');
    const whoami = await send('GET', '/admin/whoami', { authorization: newbie });
    assert.equal(whoami.body.name, 'newbie');
    assert.deepEqual(Object.keys(whoami.body).sort(), ['admin', 'kind', 'name', 'permissions']);
    assert.deepEqual(whoami.body.permissions, { publish: [], consume: ['orders.*'], manage: [] });

    assert.equal((await send('PUT', '/admin/users/newbie', { authorization: root, body: { password: 'newbie password' } })).status, 409);
    assert.equal((await send('DELETE', '/admin/users/newbie', { authorization: root })).status, 204);
    assert.equal((await send('GET', '/admin/whoami', { authorization: newbie })).status, 401);
  });

  it('refuses a short password without echoing it', async () => {
    const refused = await send('PUT', '/admin/users/short', {
      authorization: basic('root', 'root password'),
      body: { password: 'hunter2', permissions: { publish: ['*'] } },
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error.field, 'password');
    assert.match(refused.body.error.message, /^password must NOT have fewer than 8 characters$/);
    assert.ok(!JSON.stringify(refused.body).includes('hunter2'));
  });

  it('serves the guest from loopback without credentials, and nobody else', async () => {
    const local = await send('GET', '/queues', { from: '127.0.0.1' });
    assert.equal(local.status, 200);
    assert.ok(local.body.queues.length >= 2);
    const remote = await send('GET', '/queues');
    assert.equal(remote.status, 401);
    assert.match(remote.body.error.message, /credentials required/);
  });

  it('counts failures in /metrics and logs them without the password', async () => {
    const before = await send('GET', '/metrics');
    const count = (text: string) =>
      Number(/usher_auth_failures_total\{protocol="http"\} (\d+)/.exec(text)?.[1] ?? NaN);
    const n = count(before.body);
    assert.ok(n > 0);
    await send('GET', '/queues', { authorization: basic('orders', 'hunter2-secret'), from: '10.99.0.1' });
    assert.equal(count((await send('GET', '/metrics')).body), n + 1);
    const line = logs.findLast((l) => l.msg === 'login failed');
    assert.equal(line?.address, '10.99.0.1');
    assert.equal(line?.user, 'orders');
    assert.ok(!logs.some((l) => JSON.stringify(l).includes('hunter2-secret')));
  });

  it('locks out after repeated failures with 429 and Retry-After', async () => {
    const from = '10.77.0.1';
    let last = 0;
    // Five undelayed failures, then slowed ones (1 ms here), then locked.
    for (let i = 0; i < 10; i++) {
      last = (await send('GET', '/queues', { authorization: basic('orders', 'wrong pw!'), from })).status;
    }
    assert.equal(last, 401);
    const locked = await send('GET', '/queues', { authorization: basic('orders', 'orders password'), from });
    assert.equal(locked.status, 429);
    assert.equal(locked.body.error.code, 'LOGIN_LOCKED');
    const retryAfter = Number(locked.headers['retry-after']);
    assert.ok(retryAfter > 250 && retryAfter <= 300, String(retryAfter));
  });
});

describe('protected system routes', () => {
  it('requires credentials on /healthz and /metrics when asked', async () => {
    const d = tempDir('usher-http-auth-sys-');
    const b = await openBroker(d.path);
    const protectedApp = createHttpServer(b, {
      logger: pino({ level: 'silent' }),
      processMetrics: false,
      protectSystemRoutes: true,
    });
    try {
      const health = await protectedApp.inject({ url: '/healthz', remoteAddress: REMOTE });
      assert.equal(health.statusCode, 401);
      const metrics = await protectedApp.inject({ url: '/metrics', remoteAddress: REMOTE });
      assert.equal(metrics.statusCode, 401);
      const local = await protectedApp.inject({ url: '/metrics', remoteAddress: '127.0.0.1' });
      assert.equal(local.statusCode, 200);
    } finally {
      await protectedApp.close();
      await b.close();
      d.remove();
    }
  });
});
