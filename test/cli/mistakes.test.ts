// User mistakes give one `usher: ...` line on stderr, no stack trace, and
// exit 2 (usage) or 1 (broker or network); `usher serve` shuts down clean.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';

import {
  closedPort,
  runUsher,
  startUsher,
  type UsherServer,
} from '../client/usher-process.js';

let server: UsherServer;

before(async () => {
  server = await startUsher();
  await runUsher(['queue', 'create', 'q'], { url: server.url });
});

after(async () => {
  await server?.stop();
});

/** Runs usher and checks for exactly one error line and the exit code. */
async function mistake(args: string[], code: number, message: string | RegExp) {
  const result = await runUsher(args, { url: server.url });
  assert.equal(result.code, code, `exit code of usher ${args.join(' ')}`);
  assert.equal(result.stdout, '');
  const lines = result.stderr.split('\n');
  assert.equal(lines.length, 2, `one line expected:\n${result.stderr}`);
  assert.equal(lines[1], '');
  assert.doesNotMatch(result.stderr, /\bat .*:\d+:\d+/);
  if (typeof message === 'string') assert.equal(lines[0], `usher: ${message}`);
  else assert.match(lines[0], message);
}

describe('usage mistakes exit 2', () => {
  it('bad duration', () =>
    mistake(
      ['publish', 'q', 'x', '--delay', '5x'],
      2,
      "option '--delay <duration>' argument '5x' is invalid. " +
        'expected a duration like 250ms, 5s, 1m or milliseconds',
    ));

  it('a duration past what the broker takes, in the flag\'s own words', async () => {
    await mistake(
      ['queue', 'create', 'durq', '--visibility-timeout', '2d'],
      2,
      "option '--visibility-timeout <duration>' argument '2d' is invalid. at most 1d",
    );
    await mistake(
      ['publish', 'q', 'x', '--ttl', '20d'],
      2,
      "option '--ttl <duration>' argument '20d' is invalid. at most 14d",
    );
  });

  it('bad number', () =>
    mistake(['publish', 'q', 'x', '--priority', '12'], 2, /'12' is invalid.*0 to 9/));

  it('unknown command and option', async () => {
    await mistake(['frobnicate'], 2, "unknown command 'frobnicate'");
    await mistake(['queue', 'list', '--fast'], 2, "unknown option '--fast'");
  });

  it('missing argument', () =>
    mistake(['publish'], 2, "missing required argument 'queue'"));

  it('no body, or two', async () => {
    const oneBody = 'give exactly one of BODY, --file or --lines';
    await mistake(['publish', 'q'], 2, oneBody);
    await mistake(['publish', 'q', 'x', '--lines'], 2, oneBody);
  });

  it('missing file', () =>
    mistake(['publish', 'q', '--file', '/nonexistent/usher.json'], 2,
      'cannot read "/nonexistent/usher.json": no such file'));

  it('conflicting and dangling consume flags', async () => {
    await mistake(['consume', 'q', '--ack', '--nack'], 2,
      "option '--ack' cannot be used with option '--nack'");
    await mistake(['consume', 'q', '--no-requeue'], 2,
      '--reason, --no-requeue and --delay need --nack');
  });

  it('bad --url', () =>
    mistake(['--url', 'nope', 'queue', 'list'], 2,
      'invalid --url "nope": expected e.g. http://127.0.0.1:8080'));
});

describe('broker and network failures exit 1', () => {
  it('unknown queue', async () => {
    await mistake(['queue', 'stats', 'missing'], 1, 'queue "missing" does not exist');
    await mistake(['publish', 'missing', 'x'], 1, 'queue "missing" does not exist');
    await mistake(['publish', 'missing', '--lines'], 1, 'queue "missing" does not exist');
  });

  it('settings the broker refuses', async () => {
    await mistake(
      ['queue', 'create', 'x'.repeat(256)],
      1,
      /name must NOT have more than 255 characters/,
    );
    await mistake(['queue', 'create', 'q', '--fifo'], 1,
      /queue "q" already exists with different settings \(fifo: false now, true asked\)/);
  });

  it('broker not running', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    await mistake(['--url', url, 'queue', 'list'], 1,
      `cannot reach Usher at ${url}: connection refused`);
  });

  it('port already taken names --port', async () => {
    const port = new URL(server.url).port;
    const result = await runUsher([
      'serve', '--data', `${server.dataDir}/other`, '--port', port, '--amqp-port', '0',
    ]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      new RegExp(
        `^usher: cannot listen on 127\\.0\\.0\\.1:${port}: ` +
          'address already in use \\(--port N picks another, 0 any free one\\)\\n$',
      ),
    );
  });

  it('AMQP port already taken names --amqp-port', async () => {
    const taken = createServer();
    await new Promise<void>((done) => taken.listen(0, '127.0.0.1', done));
    const amqpPort = String((taken.address() as AddressInfo).port);
    try {
      const result = await runUsher([
        'serve', '--data', `${server.dataDir}/amqp-taken`, '--port', '0', '--amqp-port', amqpPort,
      ]);
      assert.equal(result.code, 1);
      assert.match(
        result.stderr,
        new RegExp(
          `cannot listen for AMQP on 127\\.0\\.0\\.1:${amqpPort}: address already in use ` +
            '\\(--amqp-port N picks another, 0 any free one, -1 turns AMQP off\\)',
        ),
      );
    } finally {
      taken.close();
    }
  });
});

describe('publish --lines', () => {
  it('names the input line of a refused message', async () => {
    const small = await startUsher(['--max-message-size', '1KiB']);
    try {
      await runUsher(['queue', 'create', 'small'], { url: small.url });
      const lines = Array.from({ length: 700 }, (_, i) => `m${i}`);
      lines[600] = 'x'.repeat(2000);

      const result = await runUsher(['publish', 'small', '--lines'], {
        url: small.url,
        input: lines.join('\n'),
      });
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        'usher: line 601: message body of 2000 bytes exceeds the limit of ' +
          '1024 bytes (500 messages were published before this)\n',
      );
    } finally {
      await small.stop();
    }
  });
});

describe('the rest', () => {
  it('reads the URL from USHER_URL, and --url wins over it', async () => {
    const viaEnv = await runUsher(['queue', 'list', '--json'], { url: server.url });
    assert.equal(viaEnv.code, 0);
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const viaFlag = await runUsher(
      ['queue', 'list', '--url', server.url],
      { url: dead },
    );
    assert.equal(viaFlag.code, 0, viaFlag.stderr);
  });

  it('prints help and version with exit 0', async () => {
    const help = await runUsher(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: usher/);
    for (const command of ['serve', 'queue', 'publish', 'consume', 'dlq']) {
      assert.match(help.stdout, new RegExp(`^  ${command}\\b`, 'm'));
    }
    const pkgUrl = new URL('../../../package.json', import.meta.url);
    const pkg = JSON.parse(await readFile(pkgUrl, 'utf8'));
    const version = await runUsher(['--version']);
    assert.equal(version.stdout, `${pkg.version}\n`);
  });

  it('serve logs where it listens and exits 0 on SIGTERM', async () => {
    const other = await startUsher();
    const lines = other.log().split('\n');
    const entry = JSON.parse(
      lines.find((line) => line.includes('usher listening')) ?? '{}',
    );
    assert.equal(entry.url, other.url);
    assert.equal(entry.msg, `usher listening on ${other.url} (data ${other.dataDir})`);
    assert.equal(await other.stop(), 0);
    assert.match(other.log(), /"msg":"usher stopped"/);
  });
});
