// Usher against RabbitMQ over AMQP 0-9-1, in one run, with one client.
//
// Starts `usher serve` on a fresh data folder (fsync on, the default) and,
// through bench/rabbitmq.sh, a private RabbitMQ node in a fresh folder of
// its own, both on loopback on free ports (RabbitMQ's folder and ports are
// USHER_RABBIT_DIR, _AMQP_PORT and _DIST_PORT where set, as for the
// script: bench/amqp/brokers.ts). Then amqplib, the same code for
// both (bench/amqp/workloads.ts), runs:
//   1. transient: non-persistent messages, no confirms, an auto-ack
//      consumer running alongside (non-durable queues on both)
//   2. durable: persistent messages, confirms with 256 in flight; then a
//      consumer, prefetch 500, acking each message (RabbitMQ: a classic
//      durable queue and a quorum queue)
//   3. latency: 5,000 msg/s open loop, durable with confirms, consumer
//      running; publish-to-consume p50/p99 from each message's due time
// with 16 B, 464 B (the ticket event) and 16 KiB bodies; latency with the
// ticket only. CPU: the broker's from /proc/PID/stat (RabbitMQ: beam.smp),
// the client's (this process) from process.cpuUsage(), the rest of the
// machine's from /proc/stat. A figure is "client-bound" when the client
// used more CPU than the broker, "noisy" when other work kept the machine
// busy. Every phase is bounded in count and time.
//
// With --publishers N, the durable publish runs N publisher connections
// at once (each with its own window of 256) on both brokers alike, to see
// whether one connection's window or client, rather than the broker, is
// the limit. The default stays one, the workload issue #4 names; it does
// not flatter Usher by the client: one amqplib publisher spends 5-6 µs a
// durable publish, Usher's broker 11-14, so the client is not the limit
// on either side. It does flatter Usher by the queue: four publishers on
// the same 464 B run (at load 8, 2 cores) left Usher where it was (30.6k
// msg/s against 32.4k with one; its broker is one thread, busy) and took
// the quorum queue from 19.2k to 31.3k (RabbitMQ spreads over both cores).
// Read a ratio from one publisher with that in mind.
//
//   npm run bench:amqp -- [--messages N] [--latency-seconds S]
//     [--quick] [--usher-only] [--only transient|durable|latency]
//     [--sizes tiny,ticket,large] [--publishers N]
//     [--usher-node-flags="--cpu-prof --cpu-prof-dir=DIR"]

import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import amqp, { type ChannelModel, type Options } from 'amqplib';

import { rabbitVersion, startRabbit, startUsher, type RunningBroker } from './amqp/brokers.js';
import {
  ANSWER_LIMIT_MS, BODIES, CONFIRM_WINDOW, LATENCY_RATE, PREFETCH, durableConsume,
  durablePublish, latency, quick, transient, type Figure, type Target,
} from './amqp/workloads.js';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string' },
    'latency-seconds': { type: 'string' },
    /** Small counts, for a smoke test: every path runs, no figure means much. */
    quick: { type: 'boolean', default: false },
    /** Usher alone: no RabbitMQ started, no ratios. */
    'usher-only': { type: 'boolean', default: false },
    /** One part only, for profiling: transient, durable or latency. */
    only: { type: 'string' },
    /** Some body sizes only: tiny (16 B), ticket (464 B), large (16 KiB). */
    sizes: { type: 'string' },
    /** Publisher connections in the durable publish, for both brokers alike. */
    publishers: { type: 'string', default: '1' },
    /** Flags for Usher's node process: --usher-node-flags="--cpu-prof --cpu-prof-dir=/tmp/p". */
    'usher-node-flags': { type: 'string', default: '' },
  },
});
const MESSAGES = positive('messages', args.quick ? 1_000 : 100_000);
const LATENCY_SECONDS = positive('latency-seconds', args.quick ? 1 : 10);
const WARM_UP = Math.min(2_000, MESSAGES);
const PUBLISHERS = Number(args.publishers);
if (!Number.isInteger(PUBLISHERS) || PUBLISHERS < 1 || PUBLISHERS > 16) {
  throw new Error(`--publishers takes a whole number from 1 to 16, not "${args.publishers}"`);
}
const PARTS = ['transient', 'durable', 'latency'];
if (args.only !== undefined && !PARTS.includes(args.only)) {
  throw new Error(`--only takes one of ${PARTS.join(', ')}, not "${args.only}"`);
}
const runs = (part: string) => args.only === undefined || args.only === part;

type Column = 'usher' | 'classic' | 'quorum';
type Kind = 'transient' | 'durable';

/** queue.declare options for each kind of run; null: no such queue. */
const QUEUE_OPTIONS: Record<Column, (kind: Kind) => Options.AssertQueue | null> = {
  usher: (kind) => ({ durable: kind === 'durable' }),
  classic: (kind) => kind === 'transient'
    ? { durable: false }
    : { durable: true, arguments: { 'x-queue-type': 'classic' } },
  // A quorum queue is durable by definition.
  quorum: (kind) => kind === 'transient'
    ? null
    : { durable: true, arguments: { 'x-queue-type': 'quorum' } },
};

interface Size {
  label: string;
  body: Buffer;
  /** Share of --messages: 16 KiB runs move a quarter as many. */
  share: number;
}

const ALL_SIZES: Array<Size & { key: string }> = [
  { key: 'tiny', label: '16 B', body: BODIES.tiny, share: 1 },
  { key: 'ticket', label: '464 B ticket', body: BODIES.ticket, share: 1 },
  { key: 'large', label: '16 KiB', body: BODIES.large, share: 0.25 },
];
const SIZE_KEYS = args.sizes?.split(',') ?? ALL_SIZES.map((size) => size.key);
for (const key of SIZE_KEYS) {
  if (!ALL_SIZES.some((size) => size.key === key)) {
    throw new Error(`--sizes takes tiny, ticket and large, not "${key}"`);
  }
}
const SIZES: Size[] = ALL_SIZES.filter((size) => SIZE_KEYS.includes(size.key));

// --- the run -------------------------------------------------------------

type Measure = 'rate' | 'p50' | 'p99';

interface Row {
  workload: string;
  size: string;
  messages: number;
  measure: Measure;
  /** null: the run failed (said on stderr); absent: no such run. */
  figures: Partial<Record<Column, Figure | null>>;
}

interface Broker {
  column: Column;
  running: RunningBroker;
}

type Work = (t: Target, publisher: ChannelModel, consumer: ChannelModel,
  publishers: ChannelModel[]) => Promise<Figure>;

/**
 * `work`'s figure on fresh connections: a publisher and a consumer, and
 * PUBLISHERS publishers in all for a durable publish. Null if it threw or
 * there is no such queue.
 */
async function attempt(b: Broker, kind: Kind, what: string,
  work: Work): Promise<Figure | null | undefined> {
  const queue = QUEUE_OPTIONS[b.column](kind);
  if (queue === null) return undefined;
  const t: Target = {
    column: b.column, url: b.running.url, pid: b.running.pid, queue,
    depth: (name) => b.running.depth(name),
    log: (text) => progress(`${b.column} ${what}: ${text}`),
  };
  const models: ChannelModel[] = [];
  try {
    models.push(await connect(t), await connect(t));
    while (models.length < PUBLISHERS + 1) models.push(await connect(t));
    return await work(t, models[0], models[1], [models[0], ...models.slice(2)]);
  } catch (err) {
    t.log(`failed: ${(err as Error).message}`);
    return null;
  } finally {
    for (const model of models) await quick(model.close()).catch(() => {});
  }
}

async function connect(t: Target): Promise<ChannelModel> {
  const model = await quick(amqp.connect(t.url), `connect ${t.url}`);
  model.on('error', (err: Error) => t.log(err.message));
  return model;
}

async function measure(brokers: Broker[]): Promise<Row[]> {
  let serial = 0;
  const name = (b: Broker, what: string) => `bench-${what}-${b.column}-${serial++}`;
  const row = (workload: string, size: string, messages: number,
    measure: Measure = 'rate'): Row => ({ workload, size, messages, measure, figures: {} });

  // Untimed: JIT and caches warm in both brokers and in this client.
  for (const b of brokers) {
    const [quiet, loud] = [name(b, 'warm'), name(b, 'warm')];
    const body = BODIES.ticket;
    await attempt(b, 'transient', 'warm-up',
      (t, p, c) => transient(t, quiet, body, WARM_UP, p, c));
    await attempt(b, 'durable', 'warm-up',
      (t, _p, _c, ps) => durablePublish(t, loud, body, WARM_UP, ps));
    await attempt(b, 'durable', 'warm-up', (t, p, c) => durableConsume(t, loud, WARM_UP, c, p));
  }
  progress('warm-up done');

  const rows: Row[] = [];
  for (const size of SIZES) {
    const count = Math.max(1, Math.round(MESSAGES * size.share));
    const transients = row('transient, publish + auto-ack consume', size.label, count);
    const over = PUBLISHERS === 1 ? '' : ` on each of ${PUBLISHERS} connections`;
    const publishes = row(`durable publish, confirms (${CONFIRM_WINDOW} in flight${over})`,
      size.label, count);
    const consumes = row(`durable consume, prefetch ${PREFETCH}, acks`, size.label, count);
    for (const b of brokers) {
      const what = size.label;
      const [quiet, loud] = [name(b, 'transient'), name(b, 'durable')];
      if (runs('transient')) {
        transients.figures[b.column] = await attempt(b, 'transient', what,
          (t, p, c) => transient(t, quiet, size.body, count, p, c));
      }
      if (runs('durable')) {
        publishes.figures[b.column] = await attempt(b, 'durable', what,
          (t, _p, _c, ps) => durablePublish(t, loud, size.body, count, ps));
        consumes.figures[b.column] = await attempt(b, 'durable', what,
          (t, p, c) => durableConsume(t, loud, count, c, p));
      }
      progress(`${size.label} on ${b.column} done`);
    }
    rows.push(transients, publishes, consumes);
  }

  const total = Math.round(LATENCY_RATE * LATENCY_SECONDS);
  const workload = `latency at ${LATENCY_RATE} msg/s, durable, confirms`;
  const p50 = row(`${workload}: p50`, '464 B ticket', total, 'p50');
  const p99 = row(`${workload}: p99`, '464 B ticket', total, 'p99');
  for (const b of runs('latency') ? brokers : []) {
    const queue = name(b, 'latency');
    p50.figures[b.column] = p99.figures[b.column] = await attempt(b, 'durable', 'latency',
      (t, p, c) => latency(t, queue, LATENCY_SECONDS, p, c));
    progress(`latency on ${b.column} done`);
  }
  rows.push(p50, p99);
  return rows;
}

// --- the table -----------------------------------------------------------

const COLUMNS: Column[] = ['usher', 'classic', 'quorum'];
const clientBound = (f: Figure) => f.clientCpu > f.brokerCpu;
/** Other work took a fair part of a core (past tick rounding): suspect. */
const NOISY_CORES = 0.25;
const noisy = (f: Figure) => f.otherCpu > Math.max(NOISY_CORES * f.seconds, 0.1);
const complete = (f: Figure | null | undefined): f is Figure =>
  f !== null && f !== undefined && f.ended === undefined;

function value(f: Figure, measure: Measure): number {
  if (measure === 'p50') return f.p50Ms!;
  if (measure === 'p99') return f.p99Ms!;
  return f.messages / f.seconds;
}

function cell(f: Figure | null | undefined, measure: Measure): string {
  if (f === undefined) return '—';
  if (f === null) return 'failed';
  if (f.ended !== undefined) return `${f.ended} at ${f.messages} of ${f.wanted}`;
  const n = value(f, measure);
  let text = measure === 'rate' ? Math.round(n).toLocaleString('en-US') : `${n.toFixed(2)} ms`;
  if (clientBound(f)) text += ' client-bound';
  if (noisy(f)) text += ' noisy';
  return text;
}

/** Usher over the best RabbitMQ figure: higher msg/s, lower ms. */
function ratio(row: Row): string {
  const usher = row.figures.usher;
  const rabbits = [row.figures.classic, row.figures.quorum]
    .filter(complete)
    .map((f) => value(f, row.measure));
  if (!complete(usher) || rabbits.length === 0) return '—';
  const best = row.measure === 'rate' ? Math.max(...rabbits) : Math.min(...rabbits);
  return `${(value(usher, row.measure) / best).toFixed(2)}x`;
}

function print(rows: Row[], seconds: number, withRabbit: boolean): void {
  const out = (line = '') => console.log(line);
  out();
  out(withRabbit
    ? `Usher vs RabbitMQ ${rabbitVersion()} over AMQP 0-9-1, amqplib for both, ` +
      'brokers and client on one machine (loopback)'
    : 'Usher alone over AMQP 0-9-1 (--usher-only), amqplib');
  out(`--messages ${MESSAGES} --latency-seconds ${LATENCY_SECONDS}` +
    `${args.quick ? ' --quick' : ''}${PUBLISHERS === 1 ? '' : ` --publishers ${PUBLISHERS}`}`);
  out();
  out('| workload | size | messages | Usher | RabbitMQ classic | ' +
    'RabbitMQ quorum | Usher / best RabbitMQ |');
  out('|---|---|---:|---:|---:|---:|---:|');
  for (const row of rows) {
    const cells = COLUMNS.map((c) => cell(row.figures[c], row.measure));
    out(`| ${row.workload} | ${row.size} | ${row.messages} | ` +
      `${cells.join(' | ')} | ${ratio(row)} |`);
  }
  out(`
msg/s unless marked ms; on ms rows lower is better, and so is the ratio.
client-bound: this process used more CPU than the broker in that run.
noisy: other work kept over ${NOISY_CORES} of a core busy in that run.
`);
  out('CPU seconds (broker / client / rest of the machine) in each run; per message, µs of' +
    ' the broker and of the client; and the share of one core each kept busy (a broker near' +
    ' 100% is the limit; one well below it waits, on the disk or on the client):');
  const shown = new Set<Figure>();
  for (const row of rows) {
    const parts: string[] = [];
    for (const c of COLUMNS) {
      const f = row.figures[c];
      if (f === undefined || f === null || shown.has(f)) continue;
      shown.add(f);
      const s = (cpu: number) => Math.max(0, cpu).toFixed(2);
      // Per message, the broker's CPU is the figure least moved by
      // other work on the machine (which mostly steals wall time).
      const perMessage = (cpu: number) => (1e6 * cpu / Math.max(1, f.messages)).toFixed(1);
      const busy = (cpu: number) => `${Math.round(100 * cpu / f.seconds)}%`;
      parts.push(`${c} ${s(f.brokerCpu)} / ${s(f.clientCpu)} / ${s(f.otherCpu)} ` +
        `in ${f.seconds.toFixed(2)} s (broker ${perMessage(f.brokerCpu)} µs/msg, ` +
        `${busy(f.brokerCpu)}; client ${perMessage(f.clientCpu)} µs/msg, ${busy(f.clientCpu)})`);
    }
    if (parts.length > 0) out(`- ${row.workload}, ${row.size}: ${parts.join('; ')}`);
  }
  printLatencyParts(rows);
  out();
  out(`Total time ${seconds.toFixed(0)} s.`);
}

/** Where each broker's latency went: the client's lag, delivery, confirm. */
function printLatencyParts(rows: Row[]): void {
  const row = rows.find((r) => r.measure === 'p99');
  if (row === undefined) return;
  const lines: string[] = [];
  for (const c of COLUMNS) {
    const parts = row.figures[c]?.parts;
    if (parts === undefined) continue;
    const pair = ([p50, p99]: [number, number]) => `${p50.toFixed(2)} / ${p99.toFixed(2)}`;
    lines.push(`- ${c}: lag ${pair(parts.lag)}, deliver ${pair(parts.deliver)}, ` +
      `confirm ${pair(parts.confirm)}`);
  }
  if (lines.length === 0) return;
  console.log();
  console.log('Latency parts, p50 / p99 ms: lag from due time to publish (this client), ' +
    'publish to delivery, publish to confirm:');
  for (const line of lines) console.log(line);
}

// --- main ----------------------------------------------------------------

async function main(): Promise<void> {
  const began = performance.now();
  const started: RunningBroker[] = [];
  // Interrupted: stop what was started (the RabbitMQ node runs detached
  // and would outlive us), then end as asked.
  const onSignal = (signal: NodeJS.Signals) => {
    progress(`${signal}: stopping the brokers`);
    void Promise.all(started.map((broker) => broker.stop()))
      .finally(() => process.kill(process.pid, signal));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const usherFlags = args['usher-node-flags'].split(' ').filter((flag) => flag !== '');
    const usher = await startUsher(usherFlags, (line) => progress(`usher: ${line}`));
    started.push(usher);
    const brokers: Broker[] = [{ column: 'usher', running: usher }];
    if (!args['usher-only']) {
      const rabbit = await startRabbit();
      started.push(rabbit);
      brokers.push({ column: 'classic', running: rabbit }, { column: 'quorum', running: rabbit });
    }
    const rows = await measure(brokers);
    print(rows, (performance.now() - began) / 1000, !args['usher-only']);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const broker of started) await broker.stop();
  }
}

function progress(text: string): void {
  process.stderr.write(`amqp-compare: ${text}\n`);
}

function positive(name: 'messages' | 'latency-seconds', fallback: number): number {
  const given = args[name];
  if (given === undefined) return fallback;
  const n = Number(given);
  if (!Number.isFinite(n) || n <= 0) {
    throw new Error(`--${name} must be a positive number, not "${given}"`);
  }
  return n;
}

await main();
// A connection a broker never let close must not keep the process alive.
setTimeout(() => process.exit(), ANSWER_LIMIT_MS).unref();
