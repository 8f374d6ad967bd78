// The /metrics series of src/observe, each moved by what causes it and
// read back from a scrape: connections, failed logins, refusals, deaths
// by reason, latency histograms, resources, replication, scaling hint.

import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';

import amqplib from 'amqplib';

import { createAmqpServer } from '../../src/amqp/server.js';
import { Authenticator } from '../../src/auth/authenticator.js';
import { UserStore } from '../../src/auth/user-store.js';
import { createHttpServer } from '../../src/http/server.js';
import { observationsOf } from '../../src/observe/observations.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';
import { call, metricSample as sample, startHttp, type Harness } from '../http/harness.js';

let h: Harness | undefined;

afterEach(async () => {
  await h?.close();
  h = undefined;
});


async function scrape(harness: Harness): Promise<string> {
  const answer = await call(harness.app, 'GET', '/metrics');
  assert.equal(answer.status, 200);
  return answer.body as string;
}

/** One GET over `agent`'s kept-alive socket; answers the status. */
function get(port: number, path: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('observed metrics', () => {
  it('counts HTTP client connections, not the scraper, until they close', async () => {
    h = await startHttp();
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = h.app.server.address() as AddressInfo;
    const harness = h;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });

    const before = await scrape(h);
    await get(port, '/metrics', agent);
    const scraperOnly = await scrape(h);
    await get(port, '/queues', agent);
    const withClient = await scrape(h);
    agent.destroy();
    await until(
      async () => sample(await scrape(harness), 'usher_connections{protocol="http"}') === 0,
      'the connection to close',
    );

    assert.equal(sample(before, 'usher_connections{protocol="http"}'), 0);
    assert.equal(sample(scraperOnly, 'usher_connections{protocol="http"}'), 0);
    assert.equal(sample(withClient, 'usher_connections{protocol="http"}'), 1);
  });

  it('counts AMQP connections and failed AMQP logins', async () => {
    h = await startHttp();
    const amqp = await createAmqpServer({
      broker: h.broker,
      logger: silentLogger,
      dataDir: h.dir,
      maxMessageBytes: 1024 * 1024,
    });
    const { port } = await amqp.listen(0, '127.0.0.1');
    try {
      const connection = await amqplib.connect(`amqp://guest:guest@127.0.0.1:${port}`);
      const open = await scrape(h);
      await connection.close();
      for (let i = 0; i < 2; i++) {
        await assert.rejects(amqplib.connect(`amqp://guest:wrong@127.0.0.1:${port}`));
      }
      const harness = h;
      await until(
        async () => sample(await scrape(harness), 'usher_connections{protocol="amqp"}') === 0,
        'AMQP connections to close',
      );
      const after = await scrape(h);

      assert.equal(sample(open, 'usher_connections{protocol="amqp"}'), 1);
      assert.equal(sample(open, 'usher_auth_failures_total{protocol="amqp"}'), 0);
      assert.equal(sample(after, 'usher_auth_failures_total{protocol="amqp"}'), 2);
      assert.equal(sample(after, 'usher_auth_failures_total{protocol="http"}'), 0);
    } finally {
      await amqp.close();
    }
  });

  it('counts failed logins and refused requests over HTTP, from the auth layer', async () => {
    const dir = tempDir('usher-metrics-auth-');
    const broker = await openBroker(dir.path);
    const store = UserStore.inMemory();
    await store.addUser('nobody', 'nobody password', {
      permissions: { publish: [], consume: [], manage: [] },
    });
    const app = createHttpServer(broker, {
      logger: silentLogger,
      processMetrics: false,
      authenticator: new Authenticator({ store }),
    });
    try {
      await app.ready();
      await broker.createQueue('orders', {});
      const basic = (user: string, password: string) => ({
        authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
      });
      const before = (await app.inject({ method: 'GET', url: '/metrics' })).body;

      const wrong = await app.inject({
        method: 'GET', url: '/queues', headers: basic('nobody', 'guess'),
      });
      assert.equal(wrong.statusCode, 401);
      const refused = await app.inject({
        method: 'POST',
        url: '/queues/orders/messages',
        headers: basic('nobody', 'nobody password'),
        payload: { body: 'x' },
      });
      assert.equal(refused.statusCode, 403);
      const after = (await app.inject({ method: 'GET', url: '/metrics' })).body;

      assert.equal(sample(before, 'usher_auth_failures_total{protocol="http"}'), 0);
      assert.equal(sample(after, 'usher_auth_failures_total{protocol="http"}'), 1);
      assert.equal(sample(before, 'usher_unauthorized_total{protocol="http"}'), 0);
      assert.equal(sample(after, 'usher_unauthorized_total{protocol="http"}'), 1);
      assert.equal(broker.getQueue('orders').stats.total, 0, 'nothing published');
    } finally {
      await app.close();
      await broker.close();
      dir.remove();
    }
  });

  it('counts refused publishes by error code', async () => {
    h = await startHttp({ maxMessageBytes: 16 });
    await call(h.app, 'PUT', '/queues/q');
    await call(h.app, 'POST', '/queues/missing/messages', { body: 'x' });
    await call(h.app, 'POST', '/queues/missing/messages', { body: 'x' });
    await assert.rejects(h.broker.publish('q', [{ body: Buffer.alloc(17) }]));

    const text = await scrape(h);

    assert.equal(sample(text, 'usher_publishes_refused_total{reason="QUEUE_NOT_FOUND"}'), 2);
    assert.equal(sample(text, 'usher_publishes_refused_total{reason="MESSAGE_TOO_LARGE"}'), 1);
  });

  it('counts deaths by reason, delivery failures and the dead-letter queue size', async () => {
    h = await startHttp();
    const { app } = h;
    await call(app, 'PUT', '/queues/orders', { deadLetter: 'orders.dlq', maxAttempts: 2 });
    await call(app, 'POST', '/queues/orders/messages/batch', {
      messages: [{ body: 'a' }, { body: 'b' }, { body: 'c', ttlMs: 1 }],
    });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const first = await call(app, 'POST', '/queues/orders/receive', { max: 2 });
    const [a, b] = first.body.messages;
    await call(app, 'POST', '/queues/orders/nack', { receipt: a.receipt, requeue: false });
    await call(app, 'POST', '/queues/orders/nack', { receipt: b.receipt, delayMs: 0 });
    const again = await call(app, 'POST', '/queues/orders/receive', { max: 1 });
    await call(app, 'POST', '/queues/orders/nack', {
      receipt: again.body.messages[0].receipt,
      delayMs: 0,
    });
    await until(async () => h?.broker.getQueue('orders.dlq').stats.total === 3, 'deaths');

    const text = await scrape(h);
    const deaths = (reason: string) =>
      sample(text, `usher_message_deaths_total{queue="orders",reason="${reason}"}`);

    assert.equal(deaths('rejected'), 1);
    assert.equal(deaths('max-attempts'), 1);
    assert.equal(deaths('expired'), 1);
    assert.equal(sample(text, 'usher_delivery_failures_total{queue="orders"}'), 3);
    assert.equal(sample(text, 'usher_messages_expired_total{queue="orders"}'), 1);
    assert.equal(sample(text, 'usher_messages_dead_lettered_total{queue="orders"}'), 3);
    assert.equal(sample(text, 'usher_messages_nacked_total{queue="orders"}'), 3);
    assert.equal(sample(text, 'usher_dead_letter_queue_messages{queue="orders.dlq"}'), 3);
    assert.equal(sample(text, 'usher_dead_letter_queue_messages{queue="orders"}'), undefined);
  });

  it('exports publish-to-ack and time-in-queue histograms per queue', async () => {
    h = await startHttp();
    const { app } = h;
    await call(app, 'PUT', '/queues/work');
    await call(app, 'POST', '/queues/work/messages/batch', {
      messages: [{ body: 'a' }, { body: 'b' }],
    });
    const received = await call(app, 'POST', '/queues/work/receive', { max: 2 });
    await call(app, 'POST', '/queues/work/ack', {
      receipt: received.body.messages[0].receipt,
    });

    const text = await scrape(h);
    const series = (name: string, labels = '') =>
      sample(text, `${name}{queue="work"${labels}}`);

    assert.match(text, /# TYPE usher_publish_to_ack_seconds histogram/);
    assert.equal(series('usher_publish_to_ack_seconds_count'), 1);
    assert.equal(series('usher_publish_to_ack_seconds_bucket', ',le="+Inf"'), 1);
    assert.equal(series('usher_publish_to_ack_seconds_bucket', ',le="60"'), 1);
    assert.ok((series('usher_publish_to_ack_seconds_sum') ?? -1) >= 0);
    assert.equal(series('usher_time_in_queue_seconds_count'), 2);
    assert.equal(series('usher_time_in_queue_seconds_bucket', ',le="+Inf"'), 2);
  });

  it('shows consumer lag in messages and seconds growing while nobody consumes', async () => {
    h = await startHttp();
    await call(h.app, 'PUT', '/queues/backlog');
    await call(h.app, 'POST', '/queues/backlog/messages/batch', {
      messages: [{ body: 'a' }, { body: 'b' }],
    });
    await new Promise((resolve) => setTimeout(resolve, 30));

    const text = await scrape(h);

    assert.equal(sample(text, 'usher_queue_ready_messages{queue="backlog"}'), 2);
    assert.ok((sample(text, 'usher_queue_oldest_ready_age_seconds{queue="backlog"}') ?? 0) >= 0.03);
  });

  it('shows memory, disk size and zero replication figures', async () => {
    h = await startHttp();

    const text = await scrape(h);
    const used = sample(text, 'usher_memory_used_bytes') ?? 0;

    assert.ok(used > 10_000_000, `memory used ${used}`);
    assert.ok((sample(text, 'usher_memory_budget_bytes') ?? 0) > used);
    assert.ok((sample(text, 'usher_disk_size_bytes') ?? 0) > 0);
    assert.ok((sample(text, 'usher_disk_free_bytes') ?? 0) > 0);
    assert.ok((sample(text, 'usher_store_disk_bytes') ?? -1) >= 0);
    assert.equal(sample(text, 'usher_under_replicated_queues'), 0);
    assert.equal(sample(text, 'usher_leader_elections_total'), 0);
  });

  it('hints how many consumers would bring the backlog under the lag target', async () => {
    h = await startHttp();
    const { app, broker } = h;
    const sampler = observationsOf(broker).sampler;
    assert.ok(sampler, 'the server samples its broker');
    await call(app, 'PUT', '/queues/jobs');
    await call(app, 'PUT', '/queues/idle');
    await call(app, 'POST', '/queues/jobs/messages/batch', {
      messages: Array.from({ length: 50 }, (_, i) => ({ body: `m${i}` })),
    });
    const received = await call(app, 'POST', '/queues/jobs/receive', { max: 1 });
    await call(app, 'POST', '/queues/jobs/ack', { receipt: received.body.messages[0].receipt });
    sampler.sampleNow();

    const text = await scrape(h);
    const needed = sample(text, 'usher_queue_consumers_needed{queue="jobs"}') ?? 0;

    // The arithmetic is checked in scaling.test.ts; here, that a queue with
    // a backlog and acks gets a whole, positive hint.
    assert.ok(Number.isInteger(needed) && needed >= 1, `needed ${needed}`);
    assert.equal(sample(text, 'usher_queue_consumers_needed{queue="idle"}'), undefined);
    assert.equal(sample(text, 'usher_queue_lag_target_seconds'), 60);
  });

  it('gives each queue one status: idle, active, stalled or full', async () => {
    h = await startHttp();
    const { app, broker } = h;
    const sampler = observationsOf(broker).sampler!;
    const statusOf = async (queue: string) => {
      const text = await scrape(h!);
      const current = ['active', 'idle', 'stalled', 'full'].filter(
        (status) => sample(text, `usher_queue_status{queue="${queue}",status="${status}"}`) === 1,
      );
      assert.equal(current.length, 1, `${queue}: ${current.join(',')}`);
      return current[0];
    };

    await call(app, 'PUT', '/queues/work');
    await call(app, 'PUT', '/queues/capped', { maxLength: 2 });
    sampler.sampleNow();
    assert.equal(await statusOf('work'), 'idle');

    await call(app, 'POST', '/queues/work/messages/batch', {
      messages: [{ body: 'a' }, { body: 'b' }, { body: 'c' }],
    });
    assert.equal(await statusOf('work'), 'active', 'ready, but only one sample has seen it');
    sampler.sampleNow();
    sampler.sampleNow();
    assert.equal(await statusOf('work'), 'stalled', 'ready for two samples, nothing delivered');

    const received = await call(app, 'POST', '/queues/work/receive', { max: 1 });
    await call(app, 'POST', '/queues/work/ack', { receipt: received.body.messages[0].receipt });
    sampler.sampleNow();
    assert.equal(await statusOf('work'), 'active');

    await call(app, 'POST', '/queues/capped/messages/batch', { messages: [{ body: 'a' }, { body: 'b' }] });
    assert.equal(await statusOf('capped'), 'full');
  });
});
