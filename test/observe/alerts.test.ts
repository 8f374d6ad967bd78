// The alert rules: the shipped Prometheus file is the one generated from
// alert-rules.ts, promtool accepts and unit-tests it, and the broker's own
// evaluator fires each rule just past its threshold and not before, and
// only once the rule's `for` has passed.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import { ALERT_RULES, renderAlertRulesYaml } from '../../src/observe/alert-rules.js';
import { AlertEvaluator } from '../../src/observe/alerts.js';
import type { Sample } from '../../src/observe/sampler.js';
import { observationsOf } from '../../src/observe/observations.js';
import { call, startHttp } from '../http/harness.js';
import { histogram, queueSample, sampleAt } from './samples.js';

const deploy = (file: string) => new URL(`../../../deploy/prometheus/${file}`, import.meta.url);

/** Per rule: samples every 30 s just inside the threshold, and just past it. */
type Series = (loud: boolean) => Sample[];

const every30s = (count: number, make: (i: number) => Partial<Sample>) =>
  Array.from({ length: count }, (_, i) => sampleAt(i * 30, make(i)));

const CASES: Record<string, Series> = {
  UsherDown: (loud) => every30s(4, () => ({ up: loud ? 0 : 1 })),
  UsherNoConnections: (loud) =>
    every30s(12, () => ({ connections: { http: 0, amqp: loud ? 0 : 1 } })),
  UsherConsumerLag: (loud) =>
    every30s(12, () => ({
      queues: {
        q: queueSample({ ready: loud ? 1001 : 1000 }),
        dlq: queueSample({ ready: 5000, deadLetterQueue: true }),
      },
    })),
  UsherLatencyHigh: (loud) =>
    every30s(2, (i) => ({
      queues: {
        // 100 acks, 5 of them slow: p95 sits at the edge of the 0.5 s bucket.
        q: queueSample({
          publishToAck: histogram(
            i === 0 ? [] : [...Array(loud ? 94 : 95).fill(0.1), ...Array(loud ? 6 : 5).fill(2)],
          ),
        }),
      },
    })),
  UsherMemoryHigh: (loud) =>
    every30s(12, () => ({ memoryUsedBytes: loud ? 851 : 850, memoryBudgetBytes: 1000 })),
  UsherDiskHigh: (loud) =>
    every30s(1, () => ({ diskFreeBytes: loud ? 199 : 200, diskSizeBytes: 1000 })),
  UsherQueueLong: (loud) =>
    every30s(1, () => ({
      queues: {
        q: queueSample({ total: loud ? 10_001 : 10_000 }),
        dlq: queueSample({ total: 50_000, deadLetterQueue: true }),
      },
    })),
  UsherErrorRate: (loud) =>
    every30s(11, (i) => ({
      queues: {
        q: queueSample({ delivered: i * 1000, failures: i * (loud ? 11 : 10) }),
      },
    })),
  UsherDeadLetters: (loud) =>
    every30s(1, () => ({
      queues: { dlq: queueSample({ total: loud ? 101 : 100, deadLetterQueue: true }) },
    })),
  UsherAuthFailures: (loud) =>
    every30s(3, (i) => ({ authFailures: { http: 0, amqp: i * (loud ? 3 : 2.5) } })),
  UsherLogDamaged: (loud) => every30s(1, () => ({ corruptRegions: loud ? 1 : 0 })),
  UsherUnderReplicated: (loud) => every30s(1, () => ({ underReplicatedQueues: loud ? 1 : 0 })),
  UsherLeaderElections: (loud) =>
    every30s(3, (i) => ({ leaderElections: loud ? i : Math.min(i, 1) })),
};

function evaluateAll(samples: Sample[]) {
  const evaluator = new AlertEvaluator();
  let alerts = evaluator.evaluate(samples.slice(0, 1));
  for (let i = 2; i <= samples.length; i++) alerts = evaluator.evaluate(samples.slice(0, i));
  return alerts;
}

describe('alert rules', () => {
  it('ships the Prometheus rules generated from alert-rules.ts', () => {
    const shipped = readFileSync(deploy('usher-alerts.yml'), 'utf8');

    assert.equal(
      shipped,
      renderAlertRulesYaml(),
      'out of date: run `npm run build && node dist/src/observe/write-alert-rules.js`',
    );
  });

  it('has a test case here and in the promtool tests for every rule', () => {
    const promtoolTests = readFileSync(deploy('usher-alerts.test.yml'), 'utf8');
    const names = ALERT_RULES.map((rule) => rule.name);

    assert.deepEqual(Object.keys(CASES).sort(), [...names].sort());
    for (const name of names) {
      assert.match(promtoolTests, new RegExp(`alertname: ${name}\\b`), name);
    }
  });

  it('passes promtool check rules and promtool test rules', (t) => {
    const version = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
    if (version.error !== undefined) {
      t.skip('promtool is not installed (Debian package "prometheus")');
      return;
    }
    const check = spawnSync('promtool', ['check', 'rules', deploy('usher-alerts.yml').pathname], {
      encoding: 'utf8',
    });
    const test = spawnSync(
      'promtool',
      ['test', 'rules', deploy('usher-alerts.test.yml').pathname],
      { encoding: 'utf8' },
    );

    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.match(check.stdout, new RegExp(`SUCCESS: ${ALERT_RULES.length} rules found`));
    assert.equal(test.status, 0, test.stdout + test.stderr);
  });

  for (const rule of ALERT_RULES) {
    const held = rule.forSeconds > 0 ? ` held ${rule.forSeconds} s` : '';
    it(`${rule.name}: fires past ${rule.threshold}${held}`, () => {
      const quiet = evaluateAll(CASES[rule.name](false)).filter((a) => a.name === rule.name);
      const loud = evaluateAll(CASES[rule.name](true)).filter((a) => a.name === rule.name);

      assert.deepEqual(quiet, []);
      assert.equal(loud.length, 1, JSON.stringify(loud));
      assert.equal(loud[0].state, 'firing');
      assert.equal(loud[0].severity, rule.severity);
    });
  }

  it('keeps an alert pending until its condition has held for the rule', () => {
    const samples = CASES.UsherConsumerLag(true);

    const early = evaluateAll(samples.slice(0, 10));
    const late = evaluateAll(samples.slice(0, 11));

    assert.equal(early.find((a) => a.name === 'UsherConsumerLag')?.state, 'pending');
    assert.equal(late.find((a) => a.name === 'UsherConsumerLag')?.state, 'firing');
    assert.equal(late[0].summary, 'Queue q has 1001 messages waiting for consumers');
    assert.deepEqual(late[0].labels, { queue: 'q' });
  });

  it('shows the error rate as a percentage and no duration while pending', () => {
    const errors = evaluateAll(CASES.UsherErrorRate(true)).find((a) => a.name === 'UsherErrorRate');
    assert.match(errors?.summary ?? '', /^1\.1% of deliveries from q failed over the last 5 minutes$/);
    const lonely = evaluateAll(CASES.UsherNoConnections(true).slice(0, 2));
    const pending = lonely.find((a) => a.name === 'UsherNoConnections');
    assert.equal(pending?.state, 'pending');
    assert.equal(pending?.summary, 'No client is connected to Usher');
  });
});

describe('GET /alerts', () => {
  it('answers the rules and the alerts firing in the broker', async () => {
    const h = await startHttp();
    try {
      await call(h.app, 'PUT', '/queues/orders', { deadLetter: 'orders.dlq' });
      await call(h.app, 'POST', '/queues/orders.dlq/messages/batch', {
        messages: Array.from({ length: 101 }, (_, i) => ({ body: `dead ${i}` })),
      });
      observationsOf(h.broker).sampler?.sampleNow();

      const answer = await call(h.app, 'GET', '/alerts');
      const firing = answer.body.alerts.filter((a: { state: string }) => a.state === 'firing');

      assert.equal(answer.status, 200);
      assert.equal(answer.body.rules.length, ALERT_RULES.length);
      assert.deepEqual(
        firing.map((a: { name: string; labels: unknown }) => [a.name, a.labels]),
        [['UsherDeadLetters', { queue: 'orders.dlq' }]],
      );
    } finally {
      await h.close();
    }
  });
});
