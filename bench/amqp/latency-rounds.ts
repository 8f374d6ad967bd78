// The latency part of bench/amqp-compare.ts in rounds: a single window a
// broker, run once, moved by as much between runs as the brokers differ
// (a p99 of 6.7 ms in one run, 7.4 in the next). So each broker runs
// several short rounds, taking turns (the first broker of a round moves
// along by one each round), and the samples are pooled per broker; each
// round's p99 is kept, to show how far one window strays. After each of
// Usher's rounds its log's batches are read from /metrics and the disk's
// fdatasync is timed at that pace (disk-probe.ts).

import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';

import { machineCpuSeconds, type RunningBroker, type StoreCounters } from './brokers.js';
import { probeSyncs } from './disk-probe.js';
import type { Figure, LatencySamples } from './workloads.js';

/** Seconds of the disk probe after each of Usher's rounds. */
const PROBE_SECONDS = 1;

// Before each round the bench waits for the machine to go quiet: the
// broker before it (or Usher's disk probe) leaves work behind, RabbitMQ's
// Erlang schedulers spin on for a while and a deleted quorum queue's log
// is cleaned up, and the broker whose round came next paid for it (Usher's
// first round, right after the warm-up, had twice the p99 of its later
// ones). First the page cache's dirty data goes to disk (sync(1)): the
// throughput runs and the warm-up leave hundreds of MB of it, and its
// writeback would fall into whichever round came along, slowing that
// broker's syncs (Usher's deliveries wait for theirs; a classic queue's do
// not). Then quiet: the whole machine busy less than QUIET_CORES over one
// QUIET_WINDOW_MS window; the wait gives up after SETTLE_LIMIT_MS, as on a
// machine that other work keeps busy.
const QUIET_CORES = 0.1;
const QUIET_WINDOW_MS = 250;
const SETTLE_LIMIT_MS = 5_000;

export interface RoundBroker {
  column: string;
  running: RunningBroker;
}

/** One broker's rounds, in the order run, and their samples pooled. */
export interface Rounds {
  column: string;
  /** null: that round failed. */
  figures: Array<Figure | null>;
  /** Every round's samples and counters together; null if every round failed. */
  pooled: Figure | null;
}

/** What Usher's log did in the rounds, and how long this disk took to sync at that pace. */
export interface LogPace {
  batchesPerSecond: number;
  syncsPerSecond: number;
  bytesPerBatch: number;
  /** The probe's fdatasync times (ms), sorted. */
  probeSyncMs: Float64Array;
}

export interface LatencyReport {
  rounds: Rounds[];
  roundSeconds: number;
  /** The machine's 1-minute load average as each round began, per broker. */
  load: Map<string, number[]>;
  /** Seconds each round waited for a quiet machine (see settle), per broker; null: it never was. */
  settled: Map<string, Array<number | null>>;
  /** Usher's log batches over 5 ms and over 50 ms in each round; absent for other brokers. */
  slowBatches: Map<string, Array<[number, number] | null>>;
  log: LogPace | null;
}

/**
 * `rounds` rounds of `run` on each broker, brokers taking turns. `run`
 * makes one round's figure (null: it failed).
 */
export async function runRounds(brokers: RoundBroker[], rounds: number, roundSeconds: number,
  run: (b: RoundBroker, seconds: number) => Promise<Figure | null | undefined>,
  progress: (text: string) => void): Promise<LatencyReport> {
  const figures = new Map<string, Array<Figure | null>>();
  const load = new Map<string, number[]>();
  const settled = new Map<string, Array<number | null>>();
  const slowBatches = new Map<string, Array<[number, number] | null>>();
  const probes: Float64Array[] = [];
  const logTotals = { seconds: 0, batches: 0, syncs: 0, bytes: 0 };

  for (let round = 0; round < rounds; round++) {
    for (let turn = 0; turn < brokers.length; turn++) {
      const b = brokers[(round + turn) % brokers.length];
      if (!load.has(b.column)) load.set(b.column, []);
      if (!settled.has(b.column)) settled.set(b.column, []);
      // Usher's counters are read before the settle, not after it:
      // rendering /metrics is work of its own (the first time, cold code
      // for V8 to compile), which otherwise fell into the round's first
      // moments. It is not the whole of Usher's slow first round: with it
      // moved, round 1 still ran 5.1-6.4 ms against 2.4-3.5 for the rest.
      const before = await counters(b.running);
      settled.get(b.column)!.push(await settle());
      load.get(b.column)!.push(loadavg()[0]);
      const figure = await run(b, roundSeconds);
      if (figure === undefined) continue;
      if (!figures.has(b.column)) figures.set(b.column, []);
      figures.get(b.column)!.push(figure);
      const after = await counters(b.running);
      if (before !== null) {
        if (!slowBatches.has(b.column)) slowBatches.set(b.column, []);
        slowBatches.get(b.column)!.push(after === null ? null : [
          after.batchesOver5ms - before.batchesOver5ms,
          after.batchesOver50ms - before.batchesOver50ms,
        ]);
      }

      if (figure !== null && before !== null && after !== null) {
        const batches = after.batches - before.batches;
        logTotals.seconds += figure.seconds;
        logTotals.batches += batches;
        logTotals.syncs += after.syncs - before.syncs;
        logTotals.bytes += after.bytes - before.bytes;
        if (batches > 0) {
          probes.push(await probeSyncs((after.bytes - before.bytes) / batches,
            batches / figure.seconds, PROBE_SECONDS));
        }
      }
      const p99 = figure?.samples === undefined
        ? 'failed'
        : `${quantile(sorted(figure.samples.total), 0.99).toFixed(2)} ms`;
      progress(`latency round ${round + 1} of ${rounds} on ${b.column}: p99 ${p99}`);
    }
  }

  const log = logTotals.batches === 0 ? null : {
    batchesPerSecond: logTotals.batches / logTotals.seconds,
    syncsPerSecond: logTotals.syncs / logTotals.seconds,
    bytesPerBatch: logTotals.bytes / logTotals.batches,
    probeSyncMs: sorted(concat(probes)),
  };
  const byBroker = [...figures].map(([column, list]) =>
    ({ column, figures: list, pooled: pool(list) }));
  return { rounds: byBroker, roundSeconds, load, settled, slowBatches, log };
}

/** Waits until the machine is quiet; the seconds that took, or null if it never was. */
async function settle(): Promise<number | null> {
  const began = performance.now();
  execFileSync('sync', { timeout: 30_000 });
  while (performance.now() - began < SETTLE_LIMIT_MS) {
    const before = machineCpuSeconds();
    await new Promise((resolve) => setTimeout(resolve, QUIET_WINDOW_MS));
    const busyCores = (machineCpuSeconds() - before) / (QUIET_WINDOW_MS / 1000);
    if (busyCores < QUIET_CORES) return (performance.now() - began) / 1000;
  }
  return null;
}

async function counters(running: RunningBroker): Promise<StoreCounters | null> {
  if (running.storeCounters === undefined) return null;
  return running.storeCounters().catch(() => null);
}

/**
 * The rounds as one figure: counts, seconds and CPU summed, samples
 * joined and sorted. Ended if any round ended early; null if none ran.
 */
export function pool(figures: Array<Figure | null>): Figure | null {
  const ran = figures.filter((f): f is Figure => f !== null);
  if (ran.length === 0) return null;
  const sum = (of: (f: Figure) => number) => ran.reduce((total, f) => total + of(f), 0);
  const joined = (part: keyof LatencySamples) =>
    sorted(concat(ran.map((f) => f.samples?.[part] ?? new Float64Array(0))));
  return {
    messages: sum((f) => f.messages),
    wanted: sum((f) => f.wanted),
    seconds: sum((f) => f.seconds),
    brokerCpu: sum((f) => f.brokerCpu),
    clientCpu: sum((f) => f.clientCpu),
    otherCpu: sum((f) => f.otherCpu),
    ended: ran.find((f) => f.ended !== undefined)?.ended,
    samples: {
      total: joined('total'), lag: joined('lag'), deliver: joined('deliver'),
      confirm: joined('confirm'),
    },
  };
}

/** The q-quantile of ascending `values` (nearest rank); 0 if empty. */
export function quantile(values: Float64Array, q: number): number {
  if (values.length === 0) return 0;
  return values[Math.min(values.length - 1, Math.ceil(values.length * q) - 1)];
}

export function sorted(values: Float64Array): Float64Array {
  return Float64Array.from(values).sort();
}

function concat(parts: Float64Array[]): Float64Array {
  const all = new Float64Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}
