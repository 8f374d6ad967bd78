// The on-sale demo against an embedded broker with admission control and
// low thresholds, shortened, in two rounds: low priorities are shed,
// payments never, nothing accepted is lost, the broker is back at normal
// between the rounds and at the end, and every payment is timed under its
// phase and round. Latency itself is printed by the bench
// (bench/onsale.ts), not asserted here.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { startEmbeddedBroker } from '../../src/demo/embedded.js';
import { runOnSale } from '../../src/demo/ticketing/onsale.js';

// Both runs: a small capacity and a 5x spike over two rounds.
const SHORT_RUN = { capacityPerSecond: 200, spikeFactor: 5, rounds: 2 };

/** Runs `body` against an embedded broker whose admission reacts to a small backlog. */
async function withLowThresholds(body: (url: string) => Promise<void>): Promise<void> {
  const broker = await startEmbeddedBroker({
    sync: false,
    admission: { pressureBacklog: 100, criticalBacklog: 250, holdMs: 300, sampleMs: 50 },
  });
  try {
    await body(broker.url);
  } finally {
    await broker.close();
  }
}

describe('usher demo onsale', () => {
  it('sheds recommendations first, never payments, and loses nothing accepted', async () => {
    await withLowThresholds(async (url) => {
      const report = await runOnSale({
        ...SHORT_RUN,
        url,
        warmupMs: 200,
        normalMs: 800,
        spikeMs: 2500,
        drainTimeoutMs: 30_000,
      });
      const [payment, notification, recommendation] = report.kinds;
      assert.equal(payment.shed, 0);
      assert.ok(recommendation.shed > 0, 'recommendations shed');
      assert.ok(recommendation.shed / recommendation.sent >= notification.shed / notification.sent);
      for (const kind of report.kinds) {
        assert.equal(kind.lost, 0, `${kind.kind} lost`);
        assert.equal(kind.accepted + kind.shed, kind.sent);
        assert.equal(kind.processed, kind.accepted);
      }
      const levels = report.levels.join(' -> ');
      assert.equal(report.levels.filter((level) => level === 'pressure').length >= 2, true, levels);
      assert.equal(report.levels.filter((level) => level === 'normal').length >= 2, true, levels);
      assert.equal(report.levels.at(-1), 'normal');

      // Both rounds counted, in the pooled figures and in their own.
      assert.equal(report.roundLatencyMs.length, 2);
      for (const phase of ['normal', 'spike'] as const) {
        const perRound = report.roundLatencyMs.map((round) => round.samples[phase]);
        assert.ok(perRound.every((samples) => samples > 0), `${phase}: ${perRound}`);
        assert.equal(perRound[0] + perRound[1], report.paymentTimings[phase].samples);
      }
    });
  });
});

// With several rounds, a round whose backlog had not drained would start
// the next normal phase behind it: its payments wait longer, the normal
// p99 rises and the spike's ratio looks better than it is. Such a run must
// say so rather than report a clean ratio.
describe('usher demo onsale, a round that does not drain', () => {
  it('is named among the problems', async () => {
    await withLowThresholds(async (url) => {
      const report = await runOnSale({
        ...SHORT_RUN,
        url,
        warmupMs: 100,
        normalMs: 300,
        spikeMs: 1000,
        // Far too short for the spike's backlog.
        drainTimeoutMs: 1,
      });
      assert.equal(report.ok, false);
      assert.ok(
        report.problems.some((problem) =>
          problem.startsWith('round 1: the backlog was not drained')),
        report.problems.join('; '),
      );
    });
  });
});
