// Admission control under real load on loopback: a broker with low
// backlog and memory thresholds, publishers over HTTP on a real socket,
// no consumers until the end. Checks who is refused at each level, that
// every accepted message is delivered once, and that the broker returns
// to normal by itself once the backlog is drained.

import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, it } from 'node:test';
import pino, { type Logger } from 'pino';

import type { Broker } from '../../src/broker/broker.js';
import type { AdmissionSettings } from '../../src/broker/admission.js';
import { createHttpServer } from '../../src/http/server.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';

interface Running {
  broker: Broker;
  url: string;
  close(): Promise<void>;
}

let running: Running | null = null;

afterEach(async () => {
  await running?.close();
  running = null;
});

async function start(
  admission: Partial<AdmissionSettings>,
  logger: Logger = silentLogger,
): Promise<Running> {
  const dir = tempDir('usher-admission-');
  const broker = await openBroker(dir.path, {
    admission: { sampleMs: 10, holdMs: 200, ...admission },
  });
  const app = createHttpServer(broker, { logger, processMetrics: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return {
    broker,
    url: `http://127.0.0.1:${port}`,
    async close() {
      await app.close();
      await broker.close();
      dir.remove();
    },
  };
}

interface Sent {
  status: number;
  id?: string;
  retryAfter: string | null;
  error?: { code: string; level: string; reason: string };
}

async function publish(r: Running, queue: string, priority: number, body: string): Promise<Sent> {
  const response = await fetch(`${r.url}/queues/${queue}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ body, priority }),
  });
  const answer = (await response.json()) as { id?: string; error?: Sent['error'] };
  return {
    status: response.status,
    id: answer.id,
    retryAfter: response.headers.get('retry-after'),
    error: answer.error,
  };
}

async function level(r: Running): Promise<string> {
  const response = await fetch(`${r.url}/healthz`);
  const health = (await response.json()) as { admission: { level: string } };
  return health.admission.level;
}

async function waitForLevel(r: Running, wanted: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if ((await level(r)) === wanted) return;
    await sleep(20);
  }
  assert.fail(`level ${wanted} not reached within ${ms} ms (now ${await level(r)})`);
}

/** Publishes rounds of 12 parallel messages until `wanted`, bounded. */
async function loadUntil(
  r: Running,
  wanted: string,
  accepted: Map<string, number>,
  minBacklog: number,
  maxRounds = 100,
): Promise<Sent[]> {
  const all: Sent[] = [];
  for (let round = 0; round < maxRounds; round++) {
    // Past the threshold itself, so the level cannot step down meanwhile.
    const deep = r.broker.backlog().waiting >= minBacklog;
    if (deep && (await level(r)) === wanted) return all;
    const sends = Array.from({ length: 12 }, (_, i) =>
      publish(r, 'orders', [1, 5, 9][i % 3], `r${round}.${i}`));
    for (const sent of await Promise.all(sends)) {
      all.push(sent);
      if (sent.status === 201 && sent.id !== undefined) accepted.set(sent.id, 0);
    }
    await sleep(15);
  }
  return assert.fail(`level ${wanted} not reached after ${maxRounds} rounds`);
}

describe('admission control under load on loopback', () => {
  it('sheds by priority at pressure and critical, loses nothing, and recovers', async () => {
    running = await start({
      pressureBacklog: 40,
      criticalBacklog: 200,
      pressureMinPriority: 4,
      criticalMinPriority: 7,
    });
    const r = running;
    await fetch(`${r.url}/queues/orders`, { method: 'PUT' });
    await fetch(`${r.url}/queues/recs`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sheddable: true }),
    });
    const accepted = new Map<string, number>();

    await loadUntil(r, 'pressure', accepted, 40);
    const low = await publish(r, 'orders', 1, 'low');
    assert.equal(low.status, 429);
    assert.equal(low.retryAfter, '1');
    assert.equal(low.error?.code, 'OVERLOADED');
    assert.equal(low.error?.level, 'pressure');
    // Growth (publishes far over acks) may call pressure before the count.
    assert.ok(['backlog', 'backlog-growth'].includes(low.error?.reason ?? ''), low.error?.reason);
    assert.equal((await publish(r, 'recs', 9, 'sheddable')).status, 429);
    const mid = await publish(r, 'orders', 5, 'mid');
    assert.equal(mid.status, 201);
    accepted.set(mid.id!, 0);

    const underLoad = await loadUntil(r, 'critical', accepted, 200);
    for (const sent of underLoad) {
      if (sent.status !== 201) assert.ok([429, 503].includes(sent.status), JSON.stringify(sent));
    }
    const refusedMid = await publish(r, 'orders', 5, 'mid at critical');
    assert.equal(refusedMid.status, 503);
    assert.equal(refusedMid.retryAfter, '5');
    assert.equal(refusedMid.error?.level, 'critical');
    const high = await publish(r, 'orders', 9, 'high');
    assert.equal(high.status, 201, 'the top priority is still accepted');
    accepted.set(high.id!, 0);

    // Consumers arrive: drain everything, and each accepted message comes once.
    for (;;) {
      const messages = await r.broker.receive('orders', { max: 500, waitMs: 0 });
      if (messages.length === 0) break;
      for (const message of messages) {
        assert.ok(accepted.has(message.id), `unexpected ${message.id}`);
        accepted.set(message.id, (accepted.get(message.id) ?? 0) + 1);
      }
      await r.broker.ack('orders', messages.map((m) => m.receipt));
    }
    assert.deepEqual([...accepted.values()].filter((n) => n !== 1), [], 'each accepted once');
    assert.ok(accepted.size > 40);

    await waitForLevel(r, 'normal');
    assert.equal((await publish(r, 'orders', 0, 'after the wave')).status, 201);
    assert.ok(r.broker.admission!.stats().refused.pressure > 0);
    assert.ok(r.broker.admission!.stats().refused.critical > 0);

    const metrics = await (await fetch(`${r.url}/metrics`)).text();
    assert.match(metrics, /^usher_admission_level 0$/m);
    assert.match(metrics, /^usher_admission_refused_total\{level="pressure",priority="1"\} [1-9]/m);
    assert.match(metrics, /^usher_admission_refused_total\{level="critical",priority="5"\} [1-9]/m);
    assert.match(metrics, /^usher_admission_transitions_total\{level="critical"\} 1$/m);
  });

  it('goes critical on the real RSS against a low budget, and back', async () => {
    const rss = process.memoryUsage.rss();
    // The production log level: a 503 refusal is routine there, no line.
    const logged: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'info' }, {
      write: (line: string) => logged.push(JSON.parse(line)),
    });
    running = await start({ memoryBudgetBytes: rss }, logger);
    const r = running;
    await fetch(`${r.url}/queues/orders`, { method: 'PUT' });

    await waitForLevel(r, 'critical');
    const refused = await publish(r, 'orders', 0, 'x');
    assert.equal(refused.status, 503);
    assert.equal(refused.error?.reason, 'memory');
    assert.equal((await publish(r, 'orders', 9, 'payment')).status, 201);
    assert.deepEqual(logged.filter((line) => line.level >= 40), [], 'no line per refusal');

    // The wave passes: here, the budget grows far past the RSS.
    r.broker.admission!.settings.memoryBudgetBytes = rss * 100;
    await waitForLevel(r, 'normal');
    assert.equal((await publish(r, 'orders', 0, 'y')).status, 201);
  });
});
