// RabbitMQ's six tutorials as Python programs using pika (Debian's
// python3-pika), run with python3 against Usher's AMQP listener over real
// TCP (issue #4). The programs are in test/amqp/pika/; each takes the AMQP
// URL, plays the producer or the consumer role, prints what it sent or
// received, and exits non-zero on failure or at its deadline.
//
// python3 with pika is required: when it is missing every test here fails
// and says so. CI (.ci/run) installs python3-pika.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';
import { findPython } from './python.js';

// dist/test/amqp/ -> the checkout's test/amqp/pika/ (tsc does not copy .py).
const PROGRAMS = fileURLToPath(new URL('../../../test/amqp/pika/', import.meta.url));
/** Each program gives up by itself after this long (exit 3)... */
const PROGRAM_TIMEOUT_S = 5;
/** ...and is killed if it is still running this long after its start. */
const KILL_AFTER_MS = 7_000;

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let server: AmqpServer;
let url: string;
/** The python to run, or why there is none (then every test fails with it). */
let python: string | Error;
const running = new Set<ChildProcess>();

before(async () => {
  python = findPython('pika', 'python3-pika');
  dir = tempDir('usher-pika-');
  broker = await openBroker(dir.path);
  server = await createAmqpServer({
    broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 16 * 1024 * 1024,
  });
  const address = await server.listen(0, '127.0.0.1');
  url = `amqp://guest:guest@127.0.0.1:${address.port}`;
});

after(async () => {
  for (const child of running) child.kill('SIGKILL');
  await server?.close();
  await broker?.close();
  dir?.remove();
});

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Program {
  /** Resolves once stdout holds `text`; rejects if the program ends first. */
  waitFor(text: string): Promise<void>;
  /** Resolves with the output once the program exited 0; rejects otherwise. */
  done(): Promise<string>;
}

/** Starts `python3 -B test/amqp/pika/<file> URL --timeout N <args...>`. */
function start(file: string, ...args: string[]): Program {
  return startWaiting(0, file, ...args);
}

/**
 * The same, for a program that waits while `programs` others run one
 * after another (a receiver, for each emit): its deadline is one program's
 * for itself and one for each of them. Under load a python start and pika
 * import take a second or more, and the topics receivers, with one 5 s
 * deadline, gave up during the seventh emit (3 of 3 runs at load 10-13).
 */
function startWaiting(programs: number, file: string, ...args: string[]): Program {
  if (python instanceof Error) throw python;
  const command = [file, ...args].join(' ');
  const timeoutS = PROGRAM_TIMEOUT_S * (1 + programs);
  const argv = ['-B', PROGRAMS + file, url, '--timeout', String(timeoutS), ...args];
  const child = spawn(python, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (const wake of waiters) wake();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  const killAfterMs = KILL_AFTER_MS + (timeoutS - PROGRAM_TIMEOUT_S) * 1000;
  const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);

  let exited: Finished | null = null;
  const finished = new Promise<Finished>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      running.delete(child);
      exited = { code, signal, stdout, stderr };
      resolve(exited);
      for (const wake of waiters) wake();
    });
  });

  const describeEnd = (result: Finished) => `\`${command}\` exited with `
    + `${result.code ?? result.signal}\n--- stdout\n${result.stdout}--- stderr\n${result.stderr}`;

  return {
    waitFor(text) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (stdout.includes(text)) resolve();
          else if (exited !== null) reject(new Error(`waiting for "${text}": ${describeEnd(exited)}`));
        };
        waiters.push(check);
        check();
      });
    },
    async done() {
      const result = await finished;
      if (result.code !== 0) throw new Error(describeEnd(result));
      return result.stdout;
    },
  };
}

/** Runs a program to its end and returns its stdout. */
function run(file: string, ...args: string[]): Promise<string> {
  return start(file, ...args).done();
}

/** The lines of `output` that start with ` [x] `, without that prefix. */
function received(output: string): string[] {
  return output.split('\n').filter((line) => line.startsWith(' [x] ')).map((line) => line.slice(5));
}

describe('RabbitMQ tutorials with pika', () => {
  it('1. hello world: send, then receive from the queue', async () => {
    assert.deepEqual(received(await run('hello_world.py', 'send')), ["Sent 'Hello World!'"]);

    const output = await run('hello_world.py', 'receive', '--count', '1');
    assert.deepEqual(received(output), ["Received 'Hello World!'"]);
  });

  it('2. work queues: two workers share persistent tasks, one at a time, with acks', async () => {
    const workers = [0, 1].map(() => startWaiting(1, 'work_queues.py', 'worker'));
    await Promise.all(workers.map((worker) => worker.waitFor('[*] Waiting')));

    const tasks = ['First.', 'Second..', 'Third...', 'Fourth....', 'Fifth.....', 'Sixth.'];
    // One 'stop' per worker, behind the tasks.
    await run('work_queues.py', 'new_task', ...tasks, 'stop', 'stop');

    const done = (await Promise.all(workers.map((worker) => worker.done())))
      .map((output) => received(output).filter((line) => line.startsWith('Done ')));
    assert.deepEqual(done.flat().sort(), tasks.map((task) => `Done '${task}'`).sort(), 'every task done once');
    assert.ok(done.every((mine) => mine.length > 0), `one worker did everything: ${JSON.stringify(done)}`);

    const stats = broker.getQueue('task_queue').stats;
    assert.equal(stats.acked, tasks.length + 2, 'every task and stop acked');
    assert.equal(stats.ready + stats.inFlight, 0);
  });

  it('3. publish/subscribe: every receiver of the fanout exchange gets every line', async () => {
    const receivers = [0, 1].map(() =>
      startWaiting(2, 'publish_subscribe.py', 'receive', '--count', '2'));
    await Promise.all(receivers.map((receiver) => receiver.waitFor('[*] Waiting for messages on amq.gen-')));

    await run('publish_subscribe.py', 'emit', 'info: Hello World!');
    await run('publish_subscribe.py', 'emit', 'warning: disk 91% full');

    for (const receiver of receivers) {
      assert.deepEqual(received(await receiver.done()), ['info: Hello World!', 'warning: disk 91% full']);
    }
  });

  it('4. routing: a direct exchange delivers by severity', async () => {
    const problems = startWaiting(4, 'routing.py', 'receive', '--count', '2', 'warning', 'error');
    const everything =
      startWaiting(4, 'routing.py', 'receive', '--count', '3', 'info', 'warning', 'error');
    await Promise.all([problems, everything].map((receiver) => receiver.waitFor('[*] Waiting')));

    for (const [severity, line] of [['info', 'started'], ['debug', 'nobody listens'], ['warning', 'slow'], ['error', 'down']]) {
      await run('routing.py', 'emit', severity, line);
    }

    assert.deepEqual(received(await problems.done()), ['warning:slow', 'error:down']);
    assert.deepEqual(received(await everything.done()), ['info:started', 'warning:slow', 'error:down']);
  });

  it('5. topics: * matches one word, # zero or more', async () => {
    const orange = startWaiting(7, 'topics.py', 'receive', '--count', '3', '*.orange.*');
    const lazyRabbits =
      startWaiting(7, 'topics.py', 'receive', '--count', '4', '*.*.rabbit', 'lazy.#');
    await Promise.all([orange, lazyRabbits].map((receiver) => receiver.waitFor('[*] Waiting')));

    // The first two match no binding: had they been routed, they would be
    // the first lines either receiver prints.
    const keys = ['quick.brown.fox', 'quick.orange.male.rabbit', 'quick.orange.rabbit',
      'lazy.orange.elephant', 'quick.orange.fox', 'lazy.brown.fox', 'lazy'];
    for (const key of keys) await run('topics.py', 'emit', key, 'hi');

    assert.deepEqual(received(await orange.done()),
      ['quick.orange.rabbit:hi', 'lazy.orange.elephant:hi', 'quick.orange.fox:hi']);
    assert.deepEqual(received(await lazyRabbits.done()),
      ['quick.orange.rabbit:hi', 'lazy.orange.elephant:hi', 'lazy.brown.fox:hi', 'lazy:hi']);
  });

  it('6. RPC: replies reach the reply_to queue under the caller\'s correlation_id', async () => {
    const rpcServer = start('rpc.py', 'server', '--count', '3');
    await rpcServer.waitFor('[x] Awaiting RPC requests');

    const output = await run('rpc.py', 'client', '1', '10', '30');
    const answers = output.split('\n').filter((line) => line.startsWith(' [.] ')).map((line) => line.slice(5));
    assert.deepEqual(answers, ['fib(1)=1', 'fib(10)=55', 'fib(30)=832040']);

    const served = (await rpcServer.done()).split('\n').filter((line) => line.startsWith(' [.] '));
    assert.deepEqual(served, [' [.] fib(1)', ' [.] fib(10)', ' [.] fib(30)']);
  });
});
