// The two brokers the compatibility suite runs against: Usher in this
// process, on a free loopback port, and a private RabbitMQ node started
// by bench/rabbitmq.sh in a fresh state folder, on ports picked here so
// it meets neither a bench run nor a system RabbitMQ.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { freeRabbitPorts } from '../../../bench/amqp/rabbitmq-ports.js';
import { createAmqpServer } from '../../../src/amqp/server.js';
import { openBroker, silentLogger, tempDir } from '../../helpers.js';

export type TargetName = 'usher' | 'rabbitmq';

export interface RunningTarget {
  readonly name: TargetName;
  readonly url: string;
  stop(): Promise<void>;
  /**
   * Stops the broker and starts it again over the same data, on the same
   * URL: what survives a restart (test/amqp/compat-restart.test.ts).
   */
  restart(): Promise<void>;
  /** rabbitmqctl against this node (RabbitMQ only), e.g. add_user. */
  ctl?(args: string[]): Promise<string>;
}

export async function startUsher(): Promise<RunningTarget> {
  const dir = tempDir('usher-compat-');
  const open = async (port: number) => {
    const broker = await openBroker(dir.path);
    const server = await createAmqpServer({
      broker, logger: silentLogger, dataDir: dir.path,
      maxMessageBytes: 16 * 1024 * 1024,
    });
    const address = await server.listen(port, '127.0.0.1');
    return { broker, server, port: address.port };
  };
  let running = await open(0);
  const close = async () => {
    await running.server.close();
    await running.broker.close();
  };
  return {
    name: 'usher',
    url: `amqp://guest:guest@127.0.0.1:${running.port}`,
    async restart() {
      await close();
      running = await open(running.port);
    },
    async stop() {
      await close();
      dir.remove();
    },
  };
}

/** A fresh node starts in about 5 s here; the script itself allows 90. */
const RABBIT_START_TIMEOUT_MS = 120_000;
const RABBIT_STOP_TIMEOUT_MS = 60_000;

/** `script` is bench/rabbitmq.sh unless a test of this file says otherwise. */
export async function startRabbit(script = findScript()): Promise<RunningTarget> {
  const state = mkdtempSync(join(tmpdir(), 'usher-compat-rabbitmq-'));
  const ports = await freeRabbitPorts();
  const env = {
    ...process.env,
    USHER_RABBIT_DIR: state,
    USHER_RABBIT_AMQP_PORT: String(ports.amqp),
    USHER_RABBIT_DIST_PORT: String(ports.dist),
  };

  let stopped = false;
  // Last resort when the test process ends without running after():
  // the node runs detached (setsid) and would outlive us.
  const stopSync = () => {
    if (stopped) return;
    stopped = true;
    spawnSync('bash', [script, 'stop'], { env, stdio: 'ignore', timeout: RABBIT_STOP_TIMEOUT_MS });
    rmSync(state, { recursive: true, force: true });
  };
  // Interrupted (Ctrl-C, CI cancel): stop the node, then die as asked.
  const onSignal = (signal: NodeJS.Signals) => {
    stopSync();
    process.kill(process.pid, signal);
  };
  const forget = () => {
    process.off('exit', stopSync);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.once('exit', stopSync);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const started = await run(script, ['start'], env, RABBIT_START_TIMEOUT_MS);
  if (started.code !== 0) {
    stopSync();
    forget();
    throw new Error(
      `RabbitMQ did not start: ${script} exited ${started.code}` +
      `${started.signal === null ? '' : ` (${started.signal})`}. It needs Debian` +
      ' rabbitmq-server (.ci/run installs it). Its stderr:\n' +
      started.stderr.split('\n').slice(-25).join('\n'));
  }
  const url = started.stdout.trim();
  if (!/^amqp:\/\/guest:guest@127\.0\.0\.1:\d+$/.test(url)) {
    stopSync();
    forget();
    throw new Error(`${script} printed ${JSON.stringify(url)}, not an amqp URL`);
  }

  return {
    name: 'rabbitmq',
    url,
    async ctl(args) {
      const result = await run(script, ['ctl', ...args], env, RABBIT_STOP_TIMEOUT_MS);
      if (result.code !== 0) throw new Error(`ctl ${args[0]} exited ${result.code}: ${result.stderr}`);
      return result.stdout;
    },
    async restart() {
      for (const step of ['stop', 'start']) {
        const result = await run(script, [step], env, RABBIT_START_TIMEOUT_MS);
        if (result.code !== 0) throw new Error(`${script} ${step} exited ${result.code}: ${result.stderr}`);
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      forget();
      const result = await run(script, ['stop'], env, RABBIT_STOP_TIMEOUT_MS);
      rmSync(state, { recursive: true, force: true });
      if (result.code !== 0) {
        throw new Error(`${script} stop exited ${result.code}: ${result.stderr}`);
      }
    },
  };
}

/** bench/rabbitmq.sh, from wherever this file was compiled to. */
function findScript(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, 'bench', 'rabbitmq.sh');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('bench/rabbitmq.sh not found above ' + fileURLToPath(import.meta.url));
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn('bash', [script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${timeoutMs} ms)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
