// A Celery app written for RabbitMQ, run unchanged against Usher's AMQP
// listener (issue #4): Debian's python3-celery (5.2, with kombu and
// py-amqp), a worker started as `python -m celery worker`, tasks sent by a
// second Python program. The app is test/amqp/celery/usher_tasks.py; its
// tasks write a line to a log file when they run.
//
// kombu takes any broker not named RabbitMQ for one with the AMQP spec's
// basic.qos: global=false is one limit for the channel, raised by one for
// each delayed task (countdown, eta, retry) the worker holds. Usher changes
// the limit of a running consumer as well (channel-deliveries.ts, qos), so
// a worker holding a delayed task goes on taking others; with RabbitMQ's
// reading (later consumers only) it took nothing more until the delay
// ended.
//
// python3 with celery is required: when it is missing every test here
// fails and says so. CI (.ci/run) installs python3-celery.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import type { Broker } from '../../src/broker/broker.js';
import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';
import { findPython } from './python.js';

// dist/test/amqp/ -> the checkout's test/amqp/celery/ (tsc does not copy .py).
const APP = fileURLToPath(new URL('../../../test/amqp/celery/', import.meta.url));
const QUEUE = 'usher-celery';
/** A Python start with Celery's imports takes seconds on a loaded machine. */
const WORKER_READY_MS = 40_000;
const SEND_MS = 20_000;

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let server: AmqpServer;
let python: string | Error;
let env: NodeJS.ProcessEnv;
let worker: ChildProcess | undefined;
let workerOutput = '';
const running = new Set<ChildProcess>();

before(async () => {
  python = findPython('celery', 'python3-celery');
  dir = tempDir('usher-celery-');
  broker = await openBroker(join(dir.path, 'data'));
  server = await createAmqpServer({
    broker, logger: silentLogger, dataDir: join(dir.path, 'data'), maxMessageBytes: 16 * 1024 * 1024,
  });
  const address = await server.listen(0, '127.0.0.1');
  env = {
    ...process.env,
    // kombu's URL form: the vhost after the last slash, '/' here.
    USHER_AMQP_URL: `amqp://guest:guest@127.0.0.1:${address.port}//`,
    USHER_CELERY_LOG: join(dir.path, 'ran.log'),
    PYTHONDONTWRITEBYTECODE: '1',
  };
  if (python instanceof Error) return;
  worker = startWorker(python);
  await waitFor(`the worker to be ready (its output so far:\n${workerOutput})`,
    () => workerOutput.includes('ready.'), WORKER_READY_MS);
});

after(async () => {
  if (worker && worker.exitCode === null) {
    worker.kill('SIGTERM');
    await Promise.race([new Promise((done) => worker!.once('close', done)), sleep(10_000)]);
  }
  for (const child of running) child.kill('SIGKILL');
  await server?.close();
  await broker?.close();
  dir?.remove();
});

function startWorker(interpreter: string): ChildProcess {
  const child = spawn(interpreter, [
    '-m', 'celery', '-A', 'usher_tasks', 'worker', '--pool', 'solo', '--concurrency', '1', '--loglevel', 'INFO',
  ], { cwd: APP, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.on('close', () => running.delete(child));
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.setEncoding('utf8').on('data', (chunk: string) => { workerOutput += chunk; });
  }
  return child;
}

/** Runs test/amqp/celery/send.py with `args`; resolves once it exited 0. */
async function send(...args: string[]): Promise<void> {
  if (python instanceof Error) throw python;
  const child = spawn(python, ['send.py', ...args], { cwd: APP, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.setEncoding('utf8').on('data', (chunk: string) => { output += chunk; });
  }
  const killer = setTimeout(() => child.kill('SIGKILL'), SEND_MS);
  const code = await new Promise<number | null>((done) => child.once('close', done));
  clearTimeout(killer);
  running.delete(child);
  assert.equal(code, 0, `send.py ${args.join(' ')} failed:\n${output}`);
}

/** The lines tasks wrote: task argument, then the Unix time it ran. */
function ran(): Map<string, number> {
  const path = env.USHER_CELERY_LOG!;
  const lines = existsSync(path) ? readFileSync(path, 'utf8').trim().split('\n') : [];
  return new Map(lines.filter(Boolean).map((line) => {
    const [name, at] = line.split(' ');
    return [name, Number(at)];
  }));
}

async function waitFor(what: string, done: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (worker?.exitCode != null) throw new Error(`the worker exited (${worker.exitCode}):\n${workerOutput}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

describe('a Celery app, unchanged, against Usher', () => {
  it('a worker holding a delayed task goes on running the others', async () => {
    if (python instanceof Error) throw python;
    // The smallest prefetch (one worker, multiplier 1): the delayed task
    // takes the one place unless the worker's raise reaches its consumer.
    await send('record', 'later', '--countdown', '120');
    await waitFor('the delayed task to reach the worker', () =>
      broker.getQueue(QUEUE).stats.inFlight === 1, 10_000);

    await send('record', 'now-1', 'now-2', 'now-3');
    await waitFor(`the three others to run (ran: ${[...ran().keys()]})`, () =>
      ['now-1', 'now-2', 'now-3'].every((name) => ran().has(name)), 15_000);

    assert.equal(ran().has('later'), false, 'the delayed task waits for its countdown');
    const stats = broker.getQueue(QUEUE).stats;
    assert.equal(stats.inFlight, 1, 'the worker still holds the delayed task, unacked');
    assert.equal(stats.ready, 0);
  });

  it('a task that fails is retried after its countdown', async () => {
    if (python instanceof Error) throw python;
    await send('fails_once', 'flaky');
    await waitFor('the retry to run', () => ran().has('flaky:retried'), 15_000);

    const runs = ran();
    const waited = runs.get('flaky:retried')! - runs.get('flaky:failed')!;
    assert.ok(waited >= 0.9, `retried ${waited.toFixed(3)} s after failing; its countdown is 1 s`);
  });
});
