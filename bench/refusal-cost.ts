// What a shed publish costs the broker (issue #6): CPU time of a real
// `usher serve` process per HTTP batch it refuses at critical, against
// one it accepts, both batches of 12 messages as the on-sale demo sends
// them. CPU time (utime + stime from /proc) rather than wall time, so
// that other work on a shared machine does not count; the two kinds run
// interleaved in rounds, each going first in turn.
//
//   npm run build && node dist/bench/refusal-cost.js [--requests 3000] [--rounds 4]
//
// Listens on 127.0.0.1 only, on ports the OS picks; every loop is bounded
// by --requests.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

import { USHER_BIN, usherNodeFlags } from './usher-flags.js';
import { benchArgs } from './bench-args.js';

const args = benchArgs('node dist/bench/refusal-cost.js', {
  requests: { type: 'string', default: '3000' },
  rounds: { type: 'string', default: '4' },
});
const REQUESTS = Number(args.requests);
const ROUNDS = Number(args.rounds);
const IN_FLIGHT = 8;
const BATCH = 12;
// Clock ticks per second of /proc/<pid>/stat; 100 on Linux.
const TICK_MS = 10;

const dataDir = mkdtempSync(join(tmpdir(), 'usher-refusal-cost-'));
// Backlog thresholds of a few messages: the broker is at critical as
// soon as the first batches wait, and stays there (no consumer).
const server = spawn(process.execPath, [
  ...usherNodeFlags(), USHER_BIN, 'serve', '--data', dataDir, '--host', '127.0.0.1', '--port', '0',
  '--amqp-port', '-1', '--pressure-backlog', '5', '--critical-backlog', '10',
  '--pressure-min-priority', '4', '--critical-min-priority', '7',
], { stdio: ['ignore', 'pipe', 'inherit'] });

try {
  const url = await listeningUrl();
  for (const queue of ['backlog', 'payments']) await call(url, 'PUT', `/queues/${queue}`, {});
  await call(url, 'PUT', '/queues/recommendations', { sheddable: true });
  await call(url, 'POST', '/queues/backlog/messages/batch', batchOf(8));
  await waitForCritical(url);

  const kinds = [
    { name: 'refused (503, sheddable queue)', path: '/queues/recommendations', priority: 1 },
    { name: 'accepted (201, priority 8)', path: '/queues/payments', priority: 8 },
  ];
  // Warm-up: JIT and connections, not counted.
  for (const kind of kinds) await cpuPerRequest(url, kind.path, kind.priority, 1000);
  const perKind = kinds.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? [0, 1] : [1, 0];
    for (const k of order) {
      perKind[k].push(await cpuPerRequest(url, kinds[k].path, kinds[k].priority, REQUESTS));
    }
  }

  console.log(`broker CPU per request, batches of ${BATCH}, ${REQUESTS} requests a round ` +
    `(load average ${loadavg().map((l) => l.toFixed(2)).join(' ')})`);
  for (const [k, kind] of kinds.entries()) {
    const rounds = perKind[k].map((us) => us.toFixed(0)).join(' / ');
    console.log(`  ${kind.name.padEnd(32)} ${rounds} µs`);
  }
} finally {
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve).once('error', resolve));
  rmSync(dataDir, { recursive: true, force: true });
}

/** Broker CPU µs per publish of `count` batches, IN_FLIGHT at a time. */
async function cpuPerRequest(
  url: string,
  queue: string,
  priority: number,
  count: number,
): Promise<number> {
  let sent = 0;
  const before = brokerCpuMs();
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (sent < count) {
      sent++;
      const status = await call(url, 'POST', `${queue}/messages/batch`, batchOf(priority));
      const expected = priority >= 7 ? 201 : 503;
      if (status !== expected) throw new Error(`${queue}: status ${status}, not ${expected}`);
    }
  }));
  return ((brokerCpuMs() - before) * 1000) / count;
}

function batchOf(priority: number): unknown {
  return {
    messages: Array.from({ length: BATCH }, () => ({
      priority,
      body: { kind: 'recommendation', sentAt: Date.now(), phase: 'spike', seat: 1234 },
    })),
  };
}

async function call(url: string, method: string, path: string, body: unknown): Promise<number> {
  const response = await fetch(url + path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response.status;
}

function brokerCpuMs(): number {
  // Fields after the command name, which ends with ") ": utime is the
  // 14th field of the line, stime the 15th.
  const stat = readFileSync(`/proc/${server.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

function listeningUrl(): Promise<string> {
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error('usher serve did not start in 15 s')), 15_000);
    const onData = (text: string) => {
      log += text;
      const match = /usher listening on (http:\/\/[^\s"]+)/.exec(log);
      if (match === null) return;
      clearTimeout(timer);
      // Stop collecting: the log is not needed past this line.
      server.stdout.off('data', onData).resume();
      resolve(match[1]);
    };
    server.stdout.setEncoding('utf8').on('data', onData);
  });
}

async function waitForCritical(url: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const health = (await (await fetch(`${url}/healthz`)).json()) as {
      admission?: { level?: string };
    };
    if (health.admission?.level === 'critical') return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the broker did not reach critical in 10 s');
}
