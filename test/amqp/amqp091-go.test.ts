// The Go ecosystem's RabbitMQ client, github.com/rabbitmq/amqp091-go, runs
// its own integration suite against Usher (issue #4: existing clients work
// unchanged). Debian ships the library with its tests (1.5.0, the same
// files as upstream's tag); they are built in GOPATH mode, offline, and
// pointed at an Usher listener through AMQP_URL.
//
// Left out, each for a reason of the suite's own, not Usher's (all pass
// on RabbitMQ 3.10, checked by hand with bench/rabbitmq.sh):
//   - TestIntegrationConsumeFlow expects channel.flow active=false to be
//     refused, as RabbitMQ does (540), and panics when it is not: Usher
//     pauses deliveries as the spec says (compat suite, channel.flow).
//   - Three tests run only when the server calls itself RabbitMQ, and on
//     any other broker return early leaving a connection open, which the
//     suite's goroutine-leak check then reports.
// Examples are not run: most dial localhost:5672 or made-up hosts.
//
// Go and the library are required: when they are missing the test fails
// and says which Debian packages to install (.ci/run installs them).

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import type { Broker } from '../../src/broker/broker.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';

const GOPATH = '/usr/share/gocode';
const PACKAGE = 'github.com/rabbitmq/amqp091-go';
const PACKAGES = 'golang-go golang-github-rabbitmq-amqp091-go-dev golang-uber-goleak-dev';
const LEFT_OUT = new Set([
  'TestIntegrationConsumeFlow',
  'TestIntegrationRecoverNotImplemented',
  'TestRabbitMQQueueTTLGet',
  'TestRabbitMQQueueNackMultipleRequeue',
]);
const BUILD_MS = 180_000;
const SUITE_MS = 240_000;

const dir = tempDir('usher-amqp091-go-');
let broker: Broker;
let server: AmqpServer;
let url: string;

before(async () => {
  broker = await openBroker(join(dir.path, 'data'));
  server = await createAmqpServer({
    broker, logger: silentLogger, dataDir: join(dir.path, 'data'), maxMessageBytes: 16 * 1024 * 1024,
  });
  url = `amqp://guest:guest@127.0.0.1:${(await server.listen(0, '127.0.0.1')).port}/`;
});

after(async () => {
  await server?.close();
  await broker?.close();
  dir.remove();
});

/** Go's environment for an offline GOPATH build of Debian's sources. */
function goEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GO111MODULE: 'off',
    GOPATH,
    GOCACHE: join(dir.path, 'go-cache'),
    GOPROXY: 'off',
    GOFLAGS: '',
  };
}

/** Runs `command` to its end (killed after `ms`), without blocking the broker in this process. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv, ms: number) {
  return new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk; });
    const killer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('error', (err) => { output += String(err); });
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, output });
    });
  });
}

test('amqp091-go 1.5.0 passes its integration suite against Usher', { timeout: BUILD_MS + SUITE_MS + 30_000 },
  async () => {
  const goVersion = spawnSync('go', ['version'], { encoding: 'utf8' });
  const source = join(GOPATH, 'src', PACKAGE, 'integration_test.go');
  assert.ok(goVersion.status === 0 && existsSync(source),
    `this test needs Go and amqp091-go's sources (on Debian: apt-get install ${PACKAGES}, ` +
    'as .ci/run does)');

  const binary = join(dir.path, 'amqp.test');
  const built = await run('go', ['test', '-c', '-tags', 'integration', '-o', binary, PACKAGE],
    goEnv(), BUILD_MS);
  assert.equal(built.code, 0, `building the suite failed:\n${built.output}`);

  const listed = await run(binary, ['-test.list', '^Test'], goEnv(), 30_000);
  assert.equal(listed.code, 0, listed.output);
  const tests = listed.output.split('\n').filter((name) => /^Test\w+$/.test(name));
  assert.ok(tests.length > 60, `only ${tests.length} tests listed:\n${listed.output}`);
  const chosen = tests.filter((name) => !LEFT_OUT.has(name));

  const suite = await run(binary, [
    '-test.run', `^(${chosen.join('|')})$`, '-test.timeout', `${SUITE_MS / 1000 - 10}s`, '-test.v',
  ], { ...goEnv(), AMQP_URL: url }, SUITE_MS);
  const failed = [...suite.output.matchAll(/^--- FAIL: (\w+)/gm)].map((match) => match[1]);
  assert.equal(suite.code, 0,
    `failed: ${failed.join(', ') || '(none named)'}\n${suite.output.slice(-6000)}`);
  const passed = [...suite.output.matchAll(/^--- PASS: (\w+)/gm)].length;
  assert.ok(passed >= chosen.length - 5, `only ${passed} of ${chosen.length} ran and passed`);
});
