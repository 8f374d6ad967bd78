// The ticketing demo end to end against a real broker and HTTP server in
// this process, with its crash and retry timings shortened: the report's
// figures must show every ticket accounted for.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { connect } from '../../src/client/index.js';
import {
  startEmbeddedBroker,
  type EmbeddedBroker,
} from '../../src/demo/embedded.js';
import { progressLine, reportLines } from '../../src/demo/terminal.js';
import {
  DemoTimeoutError,
  runTicketingDemo,
  type Progress,
  type TicketingReport,
} from '../../src/demo/ticketing/run.js';
import { SERVICE_NAMES } from '../../src/demo/ticketing/setup.js';
import {
  problemsOf,
  type ServiceReport,
} from '../../src/demo/ticketing/verify.js';

const BUYERS = 300;
const MALFORMED = ['TCKT-100050', 'TCKT-100150', 'TCKT-100250'];
const FAST = {
  // A lease well past what handling an e-mail takes on a loaded machine:
  // at 300 ms, under two CPU burners (load 9-10), 36-250 leases ran out
  // while their handlers still ran, and good purchases reached their
  // fifth attempt and the dead-letter queue. At 1-1.5 s only the crashed
  // service's leases ran out (6-8), and the run took no longer.
  timings: { emailVisibilityTimeoutMs: 1_500, retryInitialMs: 10, retryMaxMs: 50 },
  emailCrash: { afterFraction: 0.3, downMs: 200 },
  timeoutMs: 30_000,
};

describe('ticketing demo, embedded, 300 buyers', () => {
  let broker: EmbeddedBroker;
  let report: TicketingReport;
  const notes: string[] = [];
  const progress: Progress[] = [];

  before(async () => {
    broker = await startEmbeddedBroker({ sync: false });
    report = await runTicketingDemo({
      ...FAST,
      url: broker.url,
      buyers: BUYERS,
      runId: 'test-run',
      progressIntervalMs: 100,
      onProgress: (p) => progress.push(p),
      onNote: (text) => notes.push(text),
    });
  });

  after(() => broker.close());

  it('publishes every purchase to every service queue', () => {
    for (const name of SERVICE_NAMES) {
      assert.equal(report.services[name].published, BUYERS);
    }
    assert.equal(report.totals.published, 3 * BUYERS);
    assert.equal(report.services.payment.queue, 'tickets.test-run.payment');
  });

  it('processes each good purchase in every service, losing none', () => {
    for (const name of SERVICE_NAMES) {
      const service = report.services[name];
      assert.equal(service.processed, BUYERS - MALFORMED.length, name);
      assert.equal(service.lost, 0, name);
      assert.equal(service.leftInQueue, 0, name);
    }
    assert.equal(report.totals.lost, 0);
    assert.equal(report.ok, true, report.problems.join('; '));
  });

  it('dead-letters exactly the malformed purchases, with the reason', () => {
    assert.deepEqual(report.malformed.map((m) => m.ticketId), MALFORMED);
    for (const name of SERVICE_NAMES) {
      const service = report.services[name];
      const ids = service.deadLetters.map((d) => d.ticketId).sort();
      assert.deepEqual(ids, MALFORMED, name);
      assert.deepEqual(service.unexpectedDeadLetters, []);
      assert.deepEqual(service.missingDeadLetters, []);
    }
    const reasons = report.services.email.deadLetters.map((d) => d.reason);
    const missingEmail = /TCKT-100050: data.user.email is missing/;
    assert.ok(reasons.some((r) => missingEmail.test(r)), reasons.join());
  });

  it('retries the SMS provider failures with backoff', () => {
    const sms = report.services.sms;
    assert.ok(sms.transientFailures > 0);
    assert.ok(sms.retried >= sms.transientFailures);
    assert.ok(report.totals.retried > 0);
    // A timeout after the text went out is sent again on the retry.
    assert.ok(sms.duplicates > 0 && sms.duplicates <= sms.transientFailures);
  });

  it('redelivers what the crashed e-mail service held', () => {
    const email = report.services.email;
    assert.equal(email.crashes, 1);
    assert.ok(email.leasesExpired > 0);
    assert.ok(email.retried >= email.leasesExpired);
    const crashed = notes.some((n) => /email service crashed/.test(n));
    assert.ok(crashed, notes.join('\n'));
    assert.ok(notes.some((n) => /email service restarted/.test(n)));
    assert.ok(progress.some((p) => p.down.includes('email')));
  });

  it('keeps the payment service on its first attempts', () => {
    assert.equal(report.services.payment.retried, 0);
    assert.equal(report.services.payment.duplicates, 0);
  });

  it('reports rates and leaves the dead letters to inspect', async () => {
    assert.ok(report.timings.publishPerSecond > 0);
    assert.ok(report.timings.processPerSecond > 0);
    assert.ok(report.timings.totalMs >= report.timings.publishMs);

    const dlq = await connect(broker.url).getQueue('tickets.test-run.sms.dlq');
    assert.equal(dlq.stats.total, MALFORMED.length);
  });

  it('tells people what happened', () => {
    const text = reportLines(report).join('\n');
    assert.match(text, /^sms +300 +297 /m);
    assert.match(text, /PASS: lost 0; dead letters are exactly the 3 malformed/);
    const last = progressLine(progress[progress.length - 1]);
    assert.match(last, /published 900\/900  retries \d+  dlq 9  payment 297/);
  });
});

describe('ticketing demo bounds', () => {
  it('fails with the progress made when it runs out of time', async () => {
    const broker = await startEmbeddedBroker({ sync: false });
    try {
      await assert.rejects(
        runTicketingDemo({
          ...FAST,
          url: broker.url,
          buyers: 2_000,
          timeoutMs: 150,
        }),
        (err: unknown) => {
          assert.ok(err instanceof DemoTimeoutError);
          assert.match(
            err.message,
            /did not finish within \d+\.\d s: published \d+\/6000/,
          );
          return true;
        },
      );
    } finally {
      await broker.close();
    }
  });

  it('deletes its queues when asked', async () => {
    const broker = await startEmbeddedBroker({ sync: false });
    try {
      const report = await runTicketingDemo({
        ...FAST,
        url: broker.url,
        buyers: 20,
        emailCrash: null,
        deleteQueues: true,
      });
      assert.equal(report.ok, true, report.problems.join('; '));
      assert.deepEqual(await connect(broker.url).listQueues(), []);
    } finally {
      await broker.close();
    }
  });
});

describe('audit verdicts', () => {
  const clean: ServiceReport = {
    queue: 'tickets.r.sms',
    deadLetterQueue: 'tickets.r.sms.dlq',
    published: 10,
    processed: 9,
    retried: 0,
    transientFailures: 0,
    duplicates: 0,
    crashes: 0,
    leasesExpired: 0,
    inHandAtCrash: 0,
    deadLettered: 1,
    deadLetters: [{ ticketId: 'TCKT-1', reason: 'bad' }],
    unexpectedDeadLetters: [],
    missingDeadLetters: [],
    lost: 0,
    lostIds: [],
    leftInQueue: 0,
    clientErrors: 0,
  };

  it('finds nothing wrong with a clean service', () => {
    assert.deepEqual(problemsOf('sms', clean), []);
  });

  it('names lost, wrongly dead-lettered and leftover tickets', () => {
    const problems = problemsOf('sms', {
      ...clean,
      lost: 2,
      lostIds: ['TCKT-7', 'TCKT-8'],
      unexpectedDeadLetters: ['TCKT-4'],
      missingDeadLetters: ['TCKT-1'],
      leftInQueue: 3,
    });
    assert.deepEqual(problems, [
      'sms: 2 ticket(s) lost, e.g. TCKT-7, TCKT-8',
      'sms: well-formed ticket(s) dead-lettered: TCKT-4',
      'sms: malformed ticket(s) not in tickets.r.sms.dlq: TCKT-1',
      'sms: 3 message(s) still in tickets.r.sms',
    ]);
  });
});
