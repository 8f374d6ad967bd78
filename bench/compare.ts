// bench/compare: Usher against RabbitMQ, NATS JetStream and BullMQ on
// Redis, on this machine, side by side, so drift of a shared machine hits
// all alike. Every broker runs on 127.0.0.1 on ports picked here, with its
// state in a temporary folder; every process started is stopped by PID.
//
//   npm run build && node dist/bench/compare.js [--count N] [--size B]
//                                               [--rate N] [--rate-duration DUR]
//
// Workloads (each broker, each tier it offers):
//   throughput  --count messages, 1 producer, 1 consumer, closed loop
//               (confirm window 256, prefetch 256)
//   latency     open loop at --rate for --rate-duration
//
// Durability tiers are kept apart: a confirm means
//   transient   accepted in memory: RabbitMQ transient messages in a
//               non-durable queue; NATS memory storage; Redis without
//               AOF or snapshots
//   os          written to the OS (page cache), not synced: NATS file
//               storage (2.9 syncs in the background); Redis
//               appendfsync no (AOF written before the reply)
//   fdatasync   synced to disk before the confirm: Usher (always);
//               RabbitMQ persistent messages in a durable queue (confirmed
//               once persisted, RabbitMQ's confirms guide); Redis
//               appendfsync always
// Usher has only the fdatasync tier; its ratios against peers in weaker
// tiers are marked with `*` (Usher does more work per message there).
// Usher and RabbitMQ run through `usher bench --protocol amqp`; NATS and
// BullMQ through the same load loop with their npm clients.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { type BenchOptions, type BenchResult, runBench } from '../src/bench/run.js';
import type { Driver } from '../src/bench/driver.js';
import { steadyProfile } from '../src/bench/profile.js';
import { bodyTemplate } from '../src/bench/stamp.js';
import { parseDuration } from '../src/util/duration.js';
import { BullmqDriver } from './peers/bullmq-driver.js';
import { NatsDriver } from './peers/nats-driver.js';
import { usherNodeFlags } from './usher-flags.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const USHER_BIN = join(ROOT, 'bin/usher');
const RABBIT_SH = join(ROOT, 'bench/rabbitmq.sh');

type Tier = 'transient' | 'os' | 'fdatasync';
const TIERS: Tier[] = ['transient', 'os', 'fdatasync'];

interface Settings {
  count: number;
  size: number;
  rate: number;
  rateDurationMs: number;
}

interface Row {
  tier: Tier;
  workload: string;
  system: string;
  result: BenchResult | null;
  note?: string;
}

const work = mkdtempSync(join(tmpdir(), 'usher-compare-'));
const started: { name: string; stop: () => void }[] = [];

async function main(): Promise<void> {
  const settings = parseArgs(process.argv.slice(2));
  const rows: Row[] = [];
  try {
    const usher = await startUsher();
    const rabbit = startRabbit();
    const nats = await startNats();

    for (const tier of TIERS) {
      const redis = await startRedis(tier);
      for (const workload of ['throughput', 'latency'] as const) {
        const name = workload === 'throughput' ? `${settings.count} msgs` : `${settings.rate}/s`;
        const label = `${workload} ${name}`;
        if (tier === 'fdatasync') {
          rows.push(
            await viaCli(tier, label, 'usher', usher.amqpUrl, usher.pid, workload, settings, false),
          );
        }
        if (rabbit !== null && tier !== 'os') {
          rows.push(
            await viaCli(
              tier,
              label,
              'rabbitmq',
              rabbit.url,
              rabbit.pid(),
              workload,
              settings,
              tier === 'transient',
            ),
          );
        }
        if (tier !== 'fdatasync') {
          const driver = new NatsDriver(nats.url, tier === 'transient' ? 'memory' : 'file');
          rows.push(await inProcess(tier, label, 'nats', driver, nats.pid, workload, settings));
        }
        rows.push(
          await inProcess(
            tier,
            label,
            'bullmq',
            new BullmqDriver(redis.port),
            redis.pid,
            workload,
            settings,
          ),
        );
      }
      redis.stop();
    }
  } finally {
    stopAll();
  }
  process.stdout.write(`${table(rows)}\n`);
}

// --- workloads --------------------------------------------------------------

function benchArgs(workload: 'throughput' | 'latency', s: Settings): string[] {
  const common = ['--size', String(s.size), '--confirm-window', '256', '--prefetch', '256'];
  return workload === 'throughput'
    ? [...common, '--count', String(s.count)]
    : [...common, '--rate', String(s.rate), '--duration', `${s.rateDurationMs}ms`];
}

async function viaCli(
  tier: Tier,
  workload: string,
  system: string,
  url: string,
  pid: number | null,
  kind: 'throughput' | 'latency',
  settings: Settings,
  transient: boolean,
): Promise<Row> {
  const out = join(work, `${system}-${tier}-${kind}.json`);
  const args = [
    USHER_BIN,
    '--url',
    url,
    'bench',
    '--protocol',
    'amqp',
    ...benchArgs(kind, settings),
    '--json',
    out,
    '--quiet',
    '--drain-timeout',
    '10s',
    ...(pid === null ? [] : ['--broker-pid', String(pid)]),
    ...(transient ? ['--transient'] : []),
  ];
  note(`${tier} ${workload}: ${system}`);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0)
    return { tier, workload, system, result: null, note: `failed: ${stderr.trim().slice(-200)}` };
  return { tier, workload, system, result: JSON.parse(readFileSync(out, 'utf8')) as BenchResult };
}

async function inProcess(
  tier: Tier,
  workload: string,
  system: string,
  driver: Driver,
  pid: number,
  kind: 'throughput' | 'latency',
  s: Settings,
): Promise<Row> {
  note(`${tier} ${workload}: ${system}`);
  const options: BenchOptions = {
    driver,
    producers: 1,
    consumers: 1,
    queues: 1,
    body: bodyTemplate(s.size),
    profile: kind === 'latency' ? steadyProfile(s.rate, s.rateDurationMs) : null,
    count: kind === 'throughput' ? s.count : null,
    durationMs: null,
    confirmWindow: 256,
    prefetch: 256,
    ackMode: 'manual',
    priorities: [0],
    nackShare: 0,
    persistent: tier !== 'transient',
    drainTimeoutMs: 10_000,
    sampleMs: 1000,
    queuePrefix: `cmp${Math.random().toString(36).slice(2, 7)}`,
    keepQueues: false,
    brokerPid: pid,
  };
  try {
    return { tier, workload, system, result: await runBench(options) };
  } catch (err) {
    return { tier, workload, system, result: null, note: `failed: ${(err as Error).message}` };
  }
}

// --- the table --------------------------------------------------------------

function table(rows: Row[]): string {
  const lines = [
    '| tier | workload | system | publish/s | consume/s | p50 ms | p99 ms | lost | broker CPU | bench CPU | Usher/peer consume/s | Usher/peer p99 |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const row of rows) {
    const r = row.result;
    if (r === null) {
      lines.push(`| ${row.tier} | ${row.workload} | ${row.system} | ${row.note ?? 'n/a'} ||||||||`);
      continue;
    }
    const usher =
      rows.find((u) => u.system === 'usher' && u.workload === row.workload)?.result ?? null;
    const mark = row.tier === 'fdatasync' ? '' : '*';
    const ratio = (a: number, b: number) => (b === 0 ? 'n/a' : `${(a / b).toFixed(2)}${mark}`);
    const vs =
      row.system === 'usher' || usher === null
        ? ['', '']
        : [ratio(usher.consumeRate, r.consumeRate), ratio(usher.latencyMs.p99, r.latencyMs.p99)];
    lines.push(
      `| ${row.tier} | ${row.workload} | ${row.system} | ${r.publishRate} | ${r.consumeRate} | ` +
        `${r.latencyMs.p50} | ${r.latencyMs.p99} | ${r.lost} | ${r.cpu.brokerCores ?? '?'} | ` +
        `${r.cpu.generatorCores}${r.cpu.clientBound ? ' (client-bound)' : ''} | ${vs[0]} | ${vs[1]} |`,
    );
  }
  lines.push(
    '',
    'consume/s ratio > 1: Usher faster; p99 ratio < 1: Usher quicker. `*`: the peer confirms at a weaker',
    'durability tier than Usher (which always fdatasyncs). CPU in cores over the run; the machine is shared.',
  );
  return lines.join('\n');
}

// --- brokers ----------------------------------------------------------------

async function startUsher(): Promise<{ amqpUrl: string; pid: number }> {
  const dataDir = join(work, 'usher');
  const child = track(
    'usher',
    spawn(
      process.execPath,
      [...usherNodeFlags(), USHER_BIN, 'serve', '--data', dataDir, '--port', '0', '--amqp-port', '0'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    ),
  );
  const out = await waitForOutput(child, /usher listening on/, 20_000);
  const amqp = /amqp:\/\/([\d.]+:\d+)/.exec(out);
  if (amqp === null) throw new Error('usher logged no AMQP address');
  return { amqpUrl: `amqp://guest:guest@${amqp[1]}`, pid: child.pid as number };
}

function startRabbit(): { url: string; pid: () => number | null } | null {
  const env = { ...process.env, USHER_RABBIT_DIR: join(work, 'rabbitmq') };
  try {
    const url = execFileSync(RABBIT_SH, ['start'], {
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim();
    started.push({
      name: 'rabbitmq',
      stop: () => void execFileSync(RABBIT_SH, ['stop'], { env, stdio: 'inherit' }),
    });
    const pid = () => {
      try {
        return Number(execFileSync(RABBIT_SH, ['pid'], { env, encoding: 'utf8' }).trim());
      } catch {
        return null;
      }
    };
    return { url, pid };
  } catch (err) {
    note(`RabbitMQ did not start, left out: ${(err as Error).message}`);
    return null;
  }
}

async function startNats(): Promise<{ url: string; pid: number }> {
  const port = await freePort();
  const child = track(
    'nats-server',
    spawn(
      'nats-server',
      ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', join(work, 'nats')],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    ),
  );
  await waitForOutput(child, /Server is ready/, 20_000);
  return { url: `127.0.0.1:${port}`, pid: child.pid as number };
}

async function startRedis(tier: Tier): Promise<{ port: number; pid: number; stop: () => void }> {
  const port = await freePort();
  const dir = join(work, `redis-${tier}`);
  execFileSync('mkdir', ['-p', dir]);
  const persistence =
    tier === 'transient'
      ? ['--appendonly', 'no']
      : ['--appendonly', 'yes', '--appendfsync', tier === 'os' ? 'no' : 'always'];
  const child = track(
    `redis-server (${tier})`,
    spawn(
      'redis-server',
      [
        '--bind',
        '127.0.0.1',
        '--port',
        String(port),
        '--dir',
        dir,
        '--save',
        '',
        '--daemonize',
        'no',
        ...persistence,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    ),
  );
  await waitForOutput(child, /Ready to accept connections/, 20_000);
  return { port, pid: child.pid as number, stop: () => stopChild(child) };
}

// --- processes --------------------------------------------------------------

function track(name: string, child: ChildProcess): ChildProcess {
  started.push({ name, stop: () => stopChild(child) });
  return child;
}

function stopChild(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    process.kill(child.pid, 'SIGTERM');
  }
}

function stopAll(): void {
  for (const { name, stop } of started.reverse()) {
    try {
      stop();
    } catch (err) {
      note(`stopping ${name} failed: ${(err as Error).message}`);
    }
  }
  started.length = 0;
  // Give TERM a moment, then remove the state folder.
  setTimeout(() => rmSync(work, { recursive: true, force: true }), 1500);
}

function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`no ${pattern} within ${timeoutMs} ms: ${out.slice(-300)}`)),
      timeoutMs,
    );
    const onData = (text: Buffer) => {
      out += text.toString();
      if (pattern.test(out)) {
        clearTimeout(timer);
        resolve(out);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code}: ${out.slice(-300)}`));
    });
  });
}

/** A port the kernel just gave out on loopback (closed again for the broker). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        resolve(typeof address === 'object' && address !== null ? address.port : 0),
      );
    });
  });
}

function parseArgs(args: string[]): Settings {
  const settings: Settings = { count: 20_000, size: 1024, rate: 2000, rateDurationMs: 5000 };
  for (let i = 0; i < args.length; i += 2) {
    const [flag, value] = [args[i], args[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--count') settings.count = Number(value);
    else if (flag === '--size') settings.size = Number(value);
    else if (flag === '--rate') settings.rate = Number(value);
    else if (flag === '--rate-duration') settings.rateDurationMs = parseDuration(value);
    else throw new Error(`unknown flag ${flag}; known: --count --size --rate --rate-duration`);
  }
  // Bounded: a compare run never exceeds these.
  if (!(settings.count > 0 && settings.count <= 1_000_000))
    throw new Error('--count must be 1 to 1000000');
  if (!(settings.rate > 0 && settings.rate <= 100_000))
    throw new Error('--rate must be 1 to 100000');
  if (settings.rateDurationMs > 120_000) throw new Error('--rate-duration must be at most 2m');
  return settings;
}

function note(line: string): void {
  process.stderr.write(`compare: ${line}\n`);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    stopAll();
    process.exit(1);
  });
}

main().then(
  () => setTimeout(() => process.exit(0), 2000),
  (err: Error) => {
    note(`failed: ${err.stack ?? err.message}`);
    stopAll();
    setTimeout(() => process.exit(1), 2000);
  },
);
