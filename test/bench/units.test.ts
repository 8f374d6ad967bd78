// The bench's pure parts: delivery accounting, stamps, schedules and
// profiles, SLO terms, the priority mix.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { usableBrokerPid } from '../../src/bench/cpu.js';
import { fetchFailure } from '../../src/bench/http-driver.js';
import { summaryHtml } from '../../src/bench/summary-html.js';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { DeliveryTracker } from '../../src/bench/delivery.js';
import { type BenchFlags, priorityCycle, resolveFlags } from '../../src/bench/options.js';
import {
  Schedule,
  parseProfile,
  spikeProfile,
  steadyProfile,
  totalDurationMs,
  totalMessages,
} from '../../src/bench/profile.js';
import { checkSlo, formatActual, parseSlo, type SloInput } from '../../src/bench/slo.js';
import { STAMP_BYTES, bodyTemplate, readStamp, writeStamp } from '../../src/bench/stamp.js';

describe('DeliveryTracker', () => {
  it('counts lost, duplicated and out-of-order per producer', () => {
    const t = new DeliveryTracker(2);
    for (let seq = 0; seq < 10; seq++) {
      t.sent(0, seq);
      t.confirmed(0, seq);
    }
    t.sent(1, 0);
    t.confirmed(1, 0);
    // Producer 0: 3 and 7 never arrive, 5 twice, 2 after 4.
    for (const seq of [0, 1, 4, 2, 5, 5, 6, 8, 9]) t.consumed(0, seq);
    t.consumed(1, 0);
    // A stamp from a producer this run never had.
    t.consumed(7, 0);

    assert.deepEqual(t.counts(), {
      confirmed: 11,
      consumed: 9,
      lost: 2,
      duplicated: 1,
      outOfOrder: 1,
      unconfirmedConsumed: 0,
    });
    assert.equal(t.foreign, 1);
  });

  it('judges order per consumer: competing consumers interleave freely', () => {
    const t = new DeliveryTracker(1);
    // Consumer 0 sees 0, 2, 4; consumer 1 sees 1, 3, then 5 after 4 elsewhere.
    for (const [seq, consumer] of [
      [0, 0],
      [2, 0],
      [1, 1],
      [4, 0],
      [3, 1],
      [5, 1],
    ]) {
      t.consumed(0, seq, consumer);
    }
    assert.equal(t.counts().outOfOrder, 0);
    // 7 is in order for consumer 1 (after 5); 8 after 9 is not for consumer 0.
    t.consumed(0, 9, 0);
    t.consumed(0, 7, 1);
    t.consumed(0, 8, 0);
    assert.equal(t.counts().outOfOrder, 1);
  });

  it('does not call an unconfirmed message lost, and counts it consumed unconfirmed', () => {
    const t = new DeliveryTracker(1);
    t.sent(0, 0);
    t.sent(0, 1);
    t.confirmed(0, 0);
    t.consumed(0, 1);
    const counts = t.counts();
    assert.equal(counts.lost, 1);
    assert.equal(counts.unconfirmedConsumed, 1);
  });

  it('grows its bitsets past the first kilobyte', () => {
    const t = new DeliveryTracker(1);
    for (const seq of [0, 100_000]) {
      t.sent(0, seq);
      t.confirmed(0, seq);
      t.consumed(0, seq);
    }
    assert.equal(t.counts().lost, 0);
    assert.equal(t.consumed(0, 100_000), false);
  });
});

describe('stamp', () => {
  it('round-trips producer, seq and time and rejects foreign bodies', () => {
    const body = bodyTemplate(64);
    writeStamp(body, 0, 3, 123_456, 1_700_000_000_123.25);
    const into = { producer: 0, seq: 0, intendedMs: 0 };
    assert.equal(readStamp(body, into), true);
    assert.deepEqual(into, { producer: 3, seq: 123_456, intendedMs: 1_700_000_000_123.25 });
    assert.equal(readStamp(Buffer.alloc(STAMP_BYTES), into), false);
    assert.equal(readStamp(Buffer.from('short'), into), false);
    assert.throws(() => bodyTemplate(10), /at least 20/);
    assert.equal(bodyTemplate(0, Buffer.from('{"ticket":1}')).length, STAMP_BYTES + 12);
  });
});

describe('Schedule', () => {
  it('spaces a steady rate evenly over producers', () => {
    const profile = steadyProfile(1000, 2000);
    assert.equal(totalMessages(profile), 2000);
    const one = new Schedule(profile, 2); // 500/s each: 2 ms apart
    assert.equal(one.dueMs(0), 0);
    assert.equal(one.dueMs(1), 2);
    assert.equal(one.dueMs(999), 1998);
    assert.equal(one.dueMs(1000), Infinity);
  });

  it('solves ramps: a linear rise from 0 to 100/s over 10 s sends 500', () => {
    const profile = { name: 'ramp', stages: [{ durationMs: 10_000, fromRate: 0, toRate: 100 }] };
    assert.equal(totalMessages(profile), 500);
    const s = new Schedule(profile, 1);
    // n = 5 t^2 -> t = sqrt(n / 5)
    assert.equal(s.dueMs(5), 1000);
    assert.equal(s.dueMs(125), 5000);
    assert.equal(s.dueMs(500), Infinity);
  });

  it('builds the spike: steady, ramp, plateau at N x, decay', () => {
    const spike = spikeProfile(100, 10_000, 10);
    assert.equal(totalDurationMs(spike), 10_000);
    assert.deepEqual(
      spike.stages.map((s) => [s.durationMs, s.fromRate, s.toRate]),
      [
        [2000, 100, 100],
        [1000, 100, 1000],
        [4000, 1000, 1000],
        [3000, 1000, 100],
      ],
    );
    // 200 + 550 + 4000 + 1650
    assert.equal(totalMessages(spike), 6400);
  });
});

describe('parseProfile', () => {
  it('reads JSON and the YAML stage list alike', () => {
    const json = parseProfile(
      '{"stages":[{"duration":"2s","rate":10},{"duration":"1s","from":10,"to":30}]}',
      'p.json',
    );
    const yaml = parseProfile(
      'stages:\n  - duration: 2s   # warm\n    rate: 10\n  - duration: 1s\n    from: 10\n    to: 30\n',
      'p.yaml',
    );
    const expected = [
      { durationMs: 2000, fromRate: 10, toRate: 10 },
      { durationMs: 1000, fromRate: 10, toRate: 30 },
    ];
    assert.deepEqual(json.stages, expected);
    assert.deepEqual(yaml.stages, expected);
  });

  it("reads the README's flow-style YAML and quoted scalars", () => {
    const readme = parseProfile(
      'stages: [{duration: 10s, rate: 500}, {duration: 5s, from: 500, to: 5000}]',
      'readme.yaml',
    );
    assert.deepEqual(readme.stages, [
      { durationMs: 10_000, fromRate: 500, toRate: 500 },
      { durationMs: 5000, fromRate: 500, toRate: 5000 },
    ]);
    const quoted = parseProfile("stages:\n  - {duration: '2s', \"rate\": \"10\"}\n", 'q.yaml');
    assert.deepEqual(quoted.stages, [{ durationMs: 2000, fromRate: 10, toRate: 10 }]);
  });

  it('refuses unknown fields, bad rates and other YAML with the place named', () => {
    assert.throws(
      () => parseProfile('{"stages":[{"duration":"1s","rat":5}]}', 'x'),
      /x stage 1: unknown field "rat"/,
    );
    assert.throws(
      () => parseProfile('{"stages":[{"duration":"1s","rate":-5}]}', 'x'),
      /rate must be a rate >= 0/,
    );
    assert.throws(
      () => parseProfile('{"stages":[{"duration":"soon","rate":5}]}', 'x'),
      /x stage 1/,
    );
    assert.throws(() => parseProfile('{"stages":[]}', 'x'), /non-empty "stages"/);
    assert.throws(() => parseProfile('steps:\n - rate: 1', 'y'), /y: expected a non-empty "stages"/);
    assert.throws(() => parseProfile('stages: [{rate: 1', 'z'), /profile z: invalid YAML/);
  });
});

describe('SLO', () => {
  const input: SloInput = {
    latencyMs: { count: 10, p50: 5, p95: 50, p99: 150, p999: 300, max: 400, mean: 10 },
    confirmLatencyMs: { count: 10, p50: 2, p95: 4, p99: 8, p999: 9, max: 10, mean: 3 },
    lost: 0,
    duplicated: 2,
    outOfOrder: 0,
    errorRatePercent: 0.05,
    publishRate: 900,
    consumeRate: 890,
  };

  it('passes and fails terms against a result', () => {
    const outcomes = checkSlo(
      parseSlo(
        'p99<200ms, lost=0, error<0.1%, duplicated=0, confirm-p99<=0.008s, publish-rate>=1000',
      ),
      input,
    );
    assert.deepEqual(
      outcomes.map((o) => [o.term, o.actual, o.pass]),
      [
        ['p99<200ms', 150, true],
        ['lost=0', 0, true],
        ['error<0.1%', 0.05, true],
        ['duplicated=0', 2, false],
        ['confirm-p99<=0.008s', 8, true],
        ['publish-rate>=1000', 900, false],
      ],
    );
  });

  it('reads p99.9 and any case, and gives the actual figure its unit', () => {
    const outcomes = checkSlo(parseSlo('P99.9<1s, Lost=0, ERROR<1%, Consume-Rate>1'), input);
    assert.deepEqual(
      outcomes.map((o) => [o.term, formatActual(o), o.pass]),
      [
        ['P99.9<1s', '300 ms', true],
        ['Lost=0', '0', true],
        ['ERROR<1%', '0.05%', true],
        ['Consume-Rate>1', '890 msg/s', true],
      ],
    );
  });

  it('refuses unknown metrics and wrong units', () => {
    assert.throws(() => parseSlo('p98<1ms'), /unknown metric "p98"/);
    assert.throws(() => parseSlo('p99<1kb'), /latency takes ms or s/);
    assert.throws(() => parseSlo('lost=0%'), /plain number/);
    assert.throws(() => parseSlo('p99 about 5'), /cannot read SLO term/);
    assert.throws(() => parseSlo(''), /empty/);
  });
});

describe('priorityCycle', () => {
  it('spreads each priority by its weight', () => {
    const cycle = priorityCycle('0:3,9:1');
    assert.equal(cycle.length, 4);
    assert.equal(cycle.filter((p) => p === 9).length, 1);
    assert.deepEqual(priorityCycle('5:1'), [5]);
    assert.throws(() => priorityCycle('10:1'), /cannot read "10:1"/);
  });
});

describe('usableBrokerPid', () => {
  it('keeps a live PID and drops a missing one with a warning', () => {
    const warnings: string[] = [];
    assert.equal(usableBrokerPid(process.pid, (w) => warnings.push(w)), process.pid);
    assert.equal(usableBrokerPid(undefined, (w) => warnings.push(w)), undefined);
    assert.equal(warnings.length, 0);

    // Above Linux's pid_max (4194304 at most): never a process.
    assert.equal(usableBrokerPid(99_999_999, (w) => warnings.push(w)), undefined);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /no process 99999999 \(--broker-pid\).*\/metrics/);
  });
});

describe('resolveFlags', () => {
  const flags: BenchFlags = {
    producers: 1, consumers: 1, queues: 1, size: 64, confirmWindow: 1, prefetch: 1,
    ack: 'manual', nackShare: 0, spikeFactor: 10, drainTimeout: 1000, count: 10,
  };

  it('refuses a URL of the other protocol before connecting', () => {
    assert.throws(
      () => resolveFlags({ ...flags, protocol: 'http' }, 'amqp://guest:secret@127.0.0.1:5672'),
      (err: Error) =>
        /--url amqp:\/\/127\.0\.0\.1:5672 is not an http\(s\):\/\/ URL/.test(err.message) &&
        !err.message.includes('secret'),
    );
    assert.throws(
      () => resolveFlags({ ...flags, protocol: 'amqp' }, 'http://127.0.0.1:8080'),
      /is not an amqp:\/\/ URL/,
    );
    assert.equal(resolveFlags(flags, 'https://127.0.0.1:8080').protocol, 'http');
    assert.equal(resolveFlags(flags, 'amqp://127.0.0.1').protocol, 'amqp');
  });

  it('refuses --transient over HTTP', () => {
    assert.throws(
      () => resolveFlags({ ...flags, transient: true }, 'http://127.0.0.1:8080'),
      /--transient is AMQP only/,
    );
    assert.equal(resolveFlags({ ...flags, transient: true }, 'amqp://127.0.0.1').protocol, 'amqp');
  });
});

describe('fetchFailure', () => {
  async function failedFetch(port: number): Promise<unknown> {
    try {
      // POST: undici retries an idempotent GET on a dropped socket.
      await fetch(`http://127.0.0.1:${port}/x`, { method: 'POST', body: 'x' });
    } catch (err) {
      return err;
    }
    throw new Error('fetch did not fail');
  }

  it('names the socket reason fetch hides in its causes', async () => {
    // A server that drops every connection, as a broker dying mid-run does.
    const dropping = createServer((socket) => socket.once('data', () => socket.destroy()));
    await new Promise<void>((done) => dropping.listen(0, '127.0.0.1', done));
    const port = (dropping.address() as AddressInfo).port;
    const reset = fetchFailure(await failedFetch(port));
    await new Promise((done) => dropping.close(done));
    assert.match(reset, /^fetch failed: .*(ECONNRESET|other side closed)/);

    const refused = fetchFailure(await failedFetch(port));
    assert.match(refused, /^fetch failed: .*ECONNREFUSED/);
  });
});

describe('summaryHtml', () => {
  it('renders the report markdown as HTML, escaped', () => {
    const html = summaryHtml(
      '# usher bench: http, closed-loop\n\n2026-12-04, 1.0 s; 1 producers.\n\n' +
        '| | |\n|---|---|\n| lost / duplicated / out of order | 0 / 0 / 0 |\n\n' +
        '**Client-bound:** the generator <used> more.\n\n' +
        '| SLO | actual | |\n|---|---|---|\n| `p99<5ms` | 3 ms | **FAIL** |\n',
    );
    assert.match(html, /^<h1>usher bench: http, closed-loop<\/h1>\n<p>2026-12-04/);
    assert.match(html, /<table><tbody><tr><td>lost \/ duplicated \/ out of order<\/td><td>0 \/ 0 \/ 0<\/td><\/tr><\/tbody><\/table>/);
    assert.match(html, /<p><strong>Client-bound:<\/strong> the generator &lt;used&gt; more\.<\/p>/);
    assert.match(html, /<thead><tr><th>SLO<\/th><th>actual<\/th><th><\/th><\/tr><\/thead>/);
    assert.match(html, /<td><code>p99&lt;5ms<\/code><\/td><td>3 ms<\/td><td><strong>FAIL<\/strong><\/td>/);
    assert.doesNotMatch(html, /\|/);
  });
});
