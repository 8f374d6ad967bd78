// `usher demo ticketing` as people run it: the real bin/usher in a child
// process, its stdout, stderr and exit status.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import type { TicketingReport } from '../../src/demo/ticketing/run.js';
import { ServeProcess } from '../fault/serve-process.js';
import { tempDir } from '../helpers.js';

// dist/test/demo/ -> the checkout's bin/usher.
const USHER = fileURLToPath(new URL('../../../bin/usher', import.meta.url));

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

function usher(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [USHER, ...args],
      { timeout: 60_000, env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A port of 127.0.0.1 that was free a moment ago and has no listener. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === 'object' && address !== null ? address.port : 0;
}

describe('usher demo ticketing', () => {
  it('runs embedded and prints a passing JSON report', async () => {
    const { code, stdout, stderr } = await usher([
      'demo', 'ticketing', '--embedded', '--buyers', '300', '--json',
    ]);
    assert.equal(code, 0, stderr);

    const report = JSON.parse(stdout) as TicketingReport;
    assert.equal(report.ok, true);
    assert.equal(report.buyers, 300);
    assert.equal(report.totals.lost, 0);
    for (const service of Object.values(report.services)) {
      assert.equal(service.published, 300);
      assert.equal(service.processed, 297);
      assert.equal(service.deadLettered, 3);
    }
    assert.match(stderr, /embedded broker on http:\/\/127\.0\.0\.1:\d+/);
    assert.match(stderr, /email service crashed/);
  });

  it('publishes and consumes over AMQP with --amqp, losing nothing through the crash', async () => {
    const { code, stdout, stderr } = await usher([
      'demo', 'ticketing', '--embedded', '--amqp', '--buyers', '300', '--json',
    ]);
    assert.equal(code, 0, stderr);

    const report = JSON.parse(stdout) as TicketingReport;
    assert.equal(report.ok, true, report.problems.join('; '));
    assert.match(report.messagingUrl, /^amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+$/);
    assert.equal(report.totals.lost, 0);
    for (const service of Object.values(report.services)) {
      assert.equal(service.published, 300);
      assert.equal(service.processed, 297);
      assert.equal(service.deadLettered, 3);
    }
    assert.match(stderr, /email service crashed/);
  });

  it('with --url and --amqp, finds the AMQP port the broker reports', async () => {
    const dir = tempDir('usher-demo-amqp-');
    const serve = new ServeProcess(dir.path);
    try {
      await serve.start();
      const { code, stdout, stderr } = await usher([
        'demo', 'ticketing', '--url', serve.url, '--amqp', '--buyers', '50', '--json',
        '--delete-queues',
      ]);
      assert.equal(code, 0, stderr);
      const report = JSON.parse(stdout) as TicketingReport;
      assert.equal(report.ok, true, report.problems.join('; '));
      assert.equal(new URL(report.messagingUrl).port, String(serve.amqpPort));
    } finally {
      await serve.kill();
      dir.remove();
    }
  });

  it('with --amqp, says so when the broker at --url has no AMQP listener', async () => {
    const dir = tempDir('usher-demo-no-amqp-');
    const serve = new ServeProcess(dir.path, ['--amqp-port', '-1']);
    try {
      await serve.start();
      const { code, stdout, stderr } = await usher([
        'demo', 'ticketing', '--url', serve.url, '--amqp', '--buyers', '5',
      ]);
      assert.equal(code, 1);
      assert.equal(stdout, '');
      assert.match(stderr, /has no plain AMQP listener.*--amqp amqp:\/\/HOST:PORT/);
    } finally {
      await serve.kill();
      dir.remove();
    }
  });

  it('refuses a bad buyer count as a usage mistake', async () => {
    const { code, stderr } = await usher(['demo', 'ticketing', '--buyers', '0']);
    assert.equal(code, 2);
    assert.match(stderr, /--buyers <n>.*expected a whole number, 1 to 1000000/);
  });

  it('says so in one line when no broker answers at --url', async () => {
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}`;
    const byFlag = await usher(['demo', 'ticketing', '--url', url]);
    const byEnv = await usher(['demo', 'ticketing'], { USHER_URL: url });

    for (const { code, stdout, stderr } of [byFlag, byEnv]) {
      assert.equal(code, 1);
      assert.equal(stdout, '');
      assert.match(stderr, new RegExp(`^usher: .*127\\.0\\.0\\.1:${port}`));
    }
  });
});
