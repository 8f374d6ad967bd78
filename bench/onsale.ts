// The on-sale spike of issue #6 against a real `usher serve` process with
// admission control on: normal load, then a spike at several times the
// consume capacity, then the drain. Prints per priority what was sent,
// accepted, shed and processed, the broker's peak RSS against its
// --memory-budget (read from /proc), and the p99 publish-to-consume
// latency of payments in the spike against its value at normal load,
// measured in the same run. The phases run in turn three times (--rounds)
// and payments are pooled by phase, so that normal load is measured
// across the same minutes of a shared machine as the spike; each round's
// own ratio is printed too.
//
//   node dist/bench/onsale.js [--capacity 400] [--spike-factor 5] [--rounds 3]
//     [--normal-ms N] [--spike-ms 8000] [--tick-ms 10] [--memory-budget-mib 256]
//
// Everything listens on 127.0.0.1, on ports the OS picks; the run is
// bounded by the phases' lengths plus a 60 s drain limit.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

import { runOnSale, type Phase } from '../src/demo/ticketing/onsale.js';
import { SEGMENTS } from '../src/demo/ticketing/onsale-timing.js';
import { USHER_BIN, usherNodeFlags } from './usher-flags.js';
import { benchArgs } from './bench-args.js';

const args = benchArgs('npm run bench:onsale --', {
  capacity: { type: 'string', default: '400' },
  'spike-factor': { type: 'string', default: '5' },
  rounds: { type: 'string', default: '3' },
  // Per round. Default: long enough for about 400 payments (20 s at
  // capacity 400).
  'normal-ms': { type: 'string' },
  'spike-ms': { type: 'string', default: '8000' },
  // How often the publisher sends; 50 sends payments in bursts of 10.
  'tick-ms': { type: 'string', default: '10' },
  'memory-budget-mib': { type: 'string', default: '256' },
  'pressure-backlog': { type: 'string', default: '1500' },
  'critical-backlog': { type: 'string', default: '3000' },
});
const BUDGET = Number(args['memory-budget-mib']) * 1024 * 1024;

const dataDir = mkdtempSync(join(tmpdir(), 'usher-onsale-'));
const server = spawn(process.execPath, [
  ...usherNodeFlags(), USHER_BIN, 'serve', '--data', dataDir, '--host', '127.0.0.1', '--port', '0',
  '--amqp-port', '-1',
  '--memory-budget', String(BUDGET),
  '--pressure-backlog', args['pressure-backlog'],
  '--critical-backlog', args['critical-backlog'],
  '--pressure-min-priority', '4',
  '--critical-min-priority', '7',
], { stdio: ['ignore', 'pipe', 'inherit'] });

let serverLog = '';
let exitCode: number | null = null;
server.on('exit', (code) => (exitCode = code));

try {
  let found = false;
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('usher serve did not start in 15 s')), 15_000);
    // Scans only the unfinished line and what arrives, and stops at the
    // URL: searching all output so far on every chunk was quadratic, and
    // a flood of log lines cost this process (the publishers' and
    // workers') seconds. Later output is read and dropped.
    server.stdout.setEncoding('utf8').on('data', (text: string) => {
      if (found) return;
      serverLog += text;
      const match = /usher listening on (http:\/\/[^\s"]+)/.exec(serverLog);
      if (match) {
        found = true;
        clearTimeout(timer);
        resolve(match[1]);
        return;
      }
      serverLog = serverLog.slice(serverLog.lastIndexOf('\n') + 1);
    });
  });

  let peakRss = 0;
  const sampleRss = () => {
    const status = readFileSync(`/proc/${server.pid}/status`, 'utf8');
    const kib = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
    peakRss = Math.max(peakRss, kib * 1024);
  };
  sampleRss();
  const startRss = peakRss;
  const cpu = cpuByPhase(server.pid as number);
  // Printed with the results: whether the machine was quiet is part of
  // what a run's figures mean.
  const loadAtStart = loadavg().map((l) => l.toFixed(2)).join(' ');

  const report = await runOnSale({
    url,
    capacityPerSecond: Number(args.capacity),
    spikeFactor: Number(args['spike-factor']),
    normalMs: args['normal-ms'] === undefined ? undefined : Number(args['normal-ms']),
    spikeMs: Number(args['spike-ms']),
    rounds: Number(args.rounds),
    publishTickMs: Number(args['tick-ms']),
    onNote: (text) => console.error(`  ${text}`),
    onTick: (phase) => {
      sampleRss();
      cpu.sample(phase);
    },
  });

  const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
  const { offeredPerSecond: offered, takenPerSecond: taken, capacityPerSecond } = report;
  console.log(`\non-sale spike: capacity ${capacityPerSecond} msg/s, offered ` +
    `${offered.normal} msg/s normal, ${offered.spike} msg/s spike ` +
    `(${(offered.spike / capacityPerSecond).toFixed(1)}x capacity); workers took ` +
    `${taken.normal} msg/s normal, ${taken.spike} msg/s in the spike`);
  console.log('\nkind            prio     sent  accepted     shed  processed  lost');
  for (const k of report.kinds) {
    console.log(`${k.kind.padEnd(15)} ${String(k.priority).padStart(4)} ` +
      `${String(k.sent).padStart(8)} ${String(k.accepted).padStart(9)} ` +
      `${String(k.shed).padStart(8)} ${String(k.processed).padStart(10)} ` +
      `${String(k.lost).padStart(5)}`);
  }
  console.log(`\nbroker RSS: start ${mib(startRss)} MiB, peak ${mib(peakRss)} MiB, ` +
    `budget ${mib(BUDGET)} MiB (peak/budget ${(peakRss / BUDGET).toFixed(2)})`);
  const { normal, spike } = report.paymentTimings;
  console.log(`payment publish-to-consume p99: normal ${normal.p99} ms (n=${normal.samples}), ` +
    `spike ${spike.p99} ms (n=${spike.samples}) ` +
    `(ratio ${report.paymentLatencyRatio}; goal <= 2); ` +
    `p50: normal ${normal.p50} ms, spike ${spike.p50} ms`);
  console.log('  by round, p99 normal / spike (ratio): ' + report.roundLatencyMs
    .map((r) => `${r.normalP99} / ${r.spikeP99} (${r.ratio})`).join(', '));
  console.log('  the same p99 over each half of a phase: ' +
    `normal ${normal.halvesP99.join(' / ')} ms, spike ${spike.halvesP99.join(' / ')} ms ` +
    '(how much it moves with the load unchanged)');
  console.log('\nwhere payment time goes, ms   ' +
    'normal p50/p99/slowest-1%   spike p50/p99/slowest-1%');
  for (const segment of SEGMENTS) {
    const cell = (s: typeof normal.segments[typeof segment]) =>
      `${s.p50} / ${s.p99} / ${s.slowestMean}`.padEnd(25);
    console.log(`  ${segment.padEnd(27)} ${cell(normal.segments[segment])} ` +
      `${cell(spike.segments[segment])}`);
  }
  const share = (phase: 'normal' | 'spike') => {
    const c = cpu.shareOfOneCore(phase);
    return `${phase} broker ${c.broker}%, demo ${c.demo}%, all else ${c.others}%`;
  };
  console.log(`CPU used, % of one core: ${share('normal')}; ${share('spike')}`);
  const loop = report.eventLoopDelayMs;
  console.log(`event-loop delay p99, worst 100 ms window: demo ${loop.demo.normal} ms normal, ` +
    `${loop.demo.spike} ms spike; broker (admission samples) ${loop.broker.normal} ms normal, ` +
    `${loop.broker.spike} ms spike`);
  console.log(`load average at the start: ${loadAtStart}; at the end: ` +
    `${loadavg().map((l) => l.toFixed(2)).join(' ')} (${cpus().length} cores)`);
  console.log(`admission levels: ${report.levels.join(' -> ')}`);
  console.log(`broker process: ${exitCode === null ? 'running, no crash' : `exited ${exitCode}`}`);
  const problems = [
    ...report.problems,
    ...(peakRss < BUDGET ? [] : ['RSS over budget']),
    ...(exitCode === null ? [] : [`the broker exited (${exitCode})`]),
  ];
  console.log(`run: ${(report.totalMs / 1000).toFixed(1)} s; ` +
    (problems.length === 0 ? 'OK' : `PROBLEMS: ${problems.join('; ')}`));
  if (problems.length > 0) process.exitCode = 1;
} finally {
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve).once('error', resolve));
  rmSync(dataDir, { recursive: true, force: true });
}

/**
 * CPU time by phase, from /proc: the broker's (utime + stime of its
 * process), this process's (publishers and workers) and everything else
 * the machine ran, so that a run on a busy machine shows how much of the
 * two cores the bench itself had. Sampled every 100 ms; a sample's time
 * goes to the phase under way when it is taken.
 */
function cpuByPhase(brokerPid: number) {
  type Sum = { broker: number; demo: number; all: number; ms: number };
  const used = new Map<Phase, Sum>();
  let last = readCpuMs(brokerPid);
  return {
    sample(phase: Phase): void {
      const now = readCpuMs(brokerPid);
      const sum = used.get(phase) ?? { broker: 0, demo: 0, all: 0, ms: 0 };
      sum.broker += now.broker - last.broker;
      sum.demo += now.demo - last.demo;
      sum.all += now.all - last.all;
      sum.ms += now.at - last.at;
      used.set(phase, sum);
      last = now;
    },
    /** Percent of one core over the phase's time, rounded. */
    shareOfOneCore(phase: Phase): { broker: number; demo: number; others: number } {
      const sum = used.get(phase);
      if (sum === undefined || sum.ms === 0) return { broker: 0, demo: 0, others: 0 };
      const percent = (ms: number) => Math.round((ms * 100) / sum.ms);
      return {
        broker: percent(sum.broker),
        demo: percent(sum.demo),
        others: percent(Math.max(0, sum.all - sum.broker - sum.demo)),
      };
    },
  };
}

/** CPU ms so far: the broker, this process, the whole machine; and when. */
function readCpuMs(brokerPid: number): { broker: number; demo: number; all: number; at: number } {
  // /proc's counters are in clock ticks of USER_HZ, 100 a second on Linux.
  const tickMs = 10;
  // /proc/PID/stat: the command may hold spaces, so fields count from
  // after its closing parenthesis; utime and stime are fields 14 and 15.
  const stat = readFileSync(`/proc/${brokerPid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const broker = (Number(fields[11]) + Number(fields[12])) * tickMs;
  const { user, system } = process.cpuUsage();
  // /proc/stat's first line: the machine's time per state; all but idle
  // and iowait is busy.
  const machine = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const [userTicks, nice, sys, , , irq, softirq, steal] = machine.slice(1).map(Number);
  const all = (userTicks + nice + sys + irq + softirq + steal) * tickMs;
  return { broker, demo: (user + system) / 1000, all, at: Date.now() };
}
