// The bench's delivery check against brokers that misbehave on purpose:
// every drop and duplicate must be counted exactly, and an SLO of lost=0
// must fail the command with exit status 1. Then the AMQP driver against a
// real (in-process) Usher: nothing lost, nacks redelivered, priorities.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import { AmqpDriver } from '../../src/bench/amqp-driver.js';
import { HttpDriver } from '../../src/bench/http-driver.js';
import { steadyProfile } from '../../src/bench/profile.js';
import { type BenchOptions, runBench } from '../../src/bench/run.js';
import { bodyTemplate } from '../../src/bench/stamp.js';
import type { Broker } from '../../src/broker/broker.js';
import { USHER_BIN } from '../client/usher-process.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';
import { startFaultyBroker } from './fake-broker.js';

function options(overrides: Partial<BenchOptions> & Pick<BenchOptions, 'driver'>): BenchOptions {
  return {
    producers: 1,
    consumers: 1,
    queues: 1,
    body: bodyTemplate(64),
    profile: null,
    count: 1000,
    durationMs: null,
    confirmWindow: 100,
    prefetch: 100,
    ackMode: 'manual',
    priorities: [0],
    nackShare: 0,
    persistent: true,
    // A drain ends as soon as everything arrived; against a lossy broker
    // it waits this long without progress. Long enough for a loaded machine.
    drainTimeoutMs: 1500,
    sampleMs: 100,
    queuePrefix: 'bench-test',
    keepQueues: false,
    ...overrides,
  };
}

const faults = { drop: (seq: number) => seq % 10 === 3, duplicate: (seq: number) => seq % 7 === 0 };

describe('delivery check against a broker that drops and duplicates', () => {
  it('counts every lost and duplicated message exactly (2 producers, 2 consumers)', async () => {
    const broker = await startFaultyBroker(faults);
    try {
      const result = await runBench(
        options({ driver: new HttpDriver(broker.url), producers: 2, consumers: 2, count: 1000 }),
      );
      // 500 seqs per producer: 50 end in 3 (dropped), 72 are multiples of
      // 7, of which 7 end in 3 (dropped first).
      assert.equal(broker.dropped.size, 100);
      assert.equal(broker.duplicated.size, 2 * (72 - 7));
      assert.equal(result.published, 1000);
      assert.equal(result.lost, broker.dropped.size);
      assert.equal(result.duplicated, broker.duplicated.size);
      assert.equal(result.consumed, 900);
      assert.equal(result.errorRatePercent, 10);
      assert.equal(result.deliveryChecked, true);
    } finally {
      await broker.close();
    }
  });

  it('counts nacked deliveries apart and still finds every message once', async () => {
    const broker = await startFaultyBroker({ drop: () => false, duplicate: () => false });
    try {
      const result = await runBench(
        options({ driver: new HttpDriver(broker.url), count: 400, nackShare: 0.25 }),
      );
      assert.equal(result.lost, 0);
      assert.equal(result.duplicated, 0);
      assert.equal(result.consumed, 400);
      // A quarter of all deliveries, redeliveries included: 400 / 0.75.
      assert.ok(Math.abs(result.nacked - 133) <= 1, `nacked ${result.nacked}`);
    } finally {
      await broker.close();
    }
  });

  it('fails `usher bench --slo lost=0` with exit status 1 and says why', async () => {
    const broker = await startFaultyBroker(faults);
    const reportDir = tempDir('usher-bench-report-');
    try {
      const run = await new Promise<ReturnType<typeof spawnSync>>((resolve) => {
        // spawnSync would block the fake broker's event loop: run async.
        import('node:child_process').then(({ spawn }) => {
          const child = spawn(
            process.execPath,
            [
              USHER_BIN,
              '--url',
              broker.url,
              'bench',
              '--count',
              '200',
              '--size',
              '32',
              '--drain-timeout',
              '1500ms',
              '--slo',
              'lost=0,p99<60s',
              '--json',
              '-',
              '--quiet',
              '--report',
              reportDir.path,
            ],
            { stdio: ['ignore', 'pipe', 'pipe'] },
          );
          let stdout = '';
          let stderr = '';
          child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
          child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
          child.on('exit', (status) => resolve({ status, stdout, stderr } as never));
        });
      });
      assert.equal(run.status, 1, String(run.stderr));
      const result = JSON.parse(String(run.stdout));
      assert.equal(result.lost, 20);
      assert.deepEqual(
        result.slo.map((o: { term: string; pass: boolean }) => [o.term, o.pass]),
        [
          ['lost=0', false],
          ['p99<60s', true],
        ],
      );
      assert.match(String(run.stderr), /SLO failed: lost=0 \(actual 20\)/);

      // The report folder: the same JSON, markdown with the SLO, HTML plots.
      const saved = JSON.parse(readFileSync(join(reportDir.path, 'result.json'), 'utf8'));
      assert.equal(saved.lost, 20);
      const markdown = readFileSync(join(reportDir.path, 'report.md'), 'utf8');
      assert.match(markdown, /\| lost \/ duplicated \/ out of order \| 20 \/ \d+ \/ \d+ \|/);
      assert.match(markdown, /\| `lost=0` \| 20 \| \*\*FAIL\*\* \|/);
      const html = readFileSync(join(reportDir.path, 'report.html'), 'utf8');
      // Plots need two samples (one a second); a shorter run says so instead.
      if (saved.series.length >= 2) assert.equal((html.match(/<svg /g) ?? []).length, 3);
      else assert.match(html, /<p>No plots: the run took [\d.]+ s, shorter than two samples/);
      assert.match(html, /<td><code>lost=0<\/code><\/td><td>20<\/td><td><strong>FAIL<\/strong><\/td>/);
    } finally {
      await broker.close();
      reportDir.remove();
    }
  });

  it('refuses bad flags with exit status 2', () => {
    const run = spawnSync(process.execPath, [USHER_BIN, 'bench', '--slo', 'p98<1ms'], {
      encoding: 'utf8',
    });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /unknown metric "p98"/);
    const queues = spawnSync(
      process.execPath,
      [USHER_BIN, 'bench', '--queues', '3', '--consumers', '2'],
      { encoding: 'utf8' },
    );
    assert.equal(queues.status, 2);
    assert.match(queues.stderr, /every queue needs a consumer/);
  });
});

describe('AMQP driver against Usher', () => {
  let dir: ReturnType<typeof tempDir>;
  let broker: Broker;
  let server: AmqpServer;
  let url: string;

  before(async () => {
    dir = tempDir('usher-bench-amqp-');
    broker = await openBroker(dir.path, { sync: true });
    server = await createAmqpServer({
      broker,
      logger: silentLogger,
      dataDir: dir.path,
      maxMessageBytes: 1 << 20,
    });
    const { port } = await server.listen(0, '127.0.0.1');
    url = `amqp://guest:guest@127.0.0.1:${port}`;
  });

  after(async () => {
    await server.close();
    await broker.close();
    dir.remove();
  });

  it('publishes with confirms and consumes every message once, with nacks and priorities', async () => {
    const result = await runBench(
      options({
        driver: new AmqpDriver(url),
        producers: 2,
        consumers: 2,
        queues: 2,
        count: 3000,
        nackShare: 0.1,
        priorities: [0, 0, 0, 9],
        body: bodyTemplate(200),
      }),
    );
    assert.equal(result.published, 3000);
    assert.equal(result.publishErrors, 0);
    assert.equal(result.consumed, 3000);
    assert.equal(result.lost, 0);
    assert.equal(result.duplicated, 0);
    assert.ok(result.nacked > 0);
    assert.equal(result.latencyMs.count, 3000);
    assert.equal(result.confirmLatencyMs.count, 3000);
    // The run's queues are gone.
    assert.deepEqual(
      broker.listQueues().filter((q) => q.name.startsWith('bench-test')),
      [],
    );
  });

  it('runs open loop on a schedule, bodies larger than a frame included', async () => {
    const result = await runBench(
      options({
        driver: new AmqpDriver(url),
        count: null,
        profile: steadyProfile(400, 500),
        // Time to catch up if a loaded machine falls behind the schedule.
        drainTimeoutMs: 10_000,
        body: bodyTemplate(300_000),
        ackMode: 'none',
      }),
    );
    assert.equal(result.mode, 'open-loop');
    assert.equal(result.sent, 200);
    assert.equal(result.unsent, 0);
    assert.equal(result.lost, 0);
    assert.equal(result.consumed, 200);
  });
});
