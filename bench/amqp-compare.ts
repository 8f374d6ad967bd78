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
//      running; publish-to-consume latency from each message's due time,
//      in --latency-rounds short rounds a broker, brokers taking turns,
//      pooled (bench/amqp/latency-rounds.ts)
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
// on either side. Whether four publishers change the ratio is not
// settled: two tries of the 464 B run on a loaded machine (load 7-8, 2
// cores) disagreed. Quorum went from 19.2k to 31.3k msg/s in one and
// from 23.0k to 21.7k in the other; Usher from 32.4k to 30.6k and from
// 22.2k to 27.4k. Measure it on a quiet machine before reading much into
// a one-publisher ratio.
//
//   npm run bench:amqp -- [--messages N] [--latency-seconds S] [--latency-rounds R]
//     [--quick] [--usher-only] [--only transient|durable|latency]
//     [--sizes tiny,ticket,large] [--publishers N] [--repeats N] [--client-no-delay]
//     [--usher-node-flags="--cpu-prof --cpu-prof-dir=DIR"]

import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';

import amqp, { type ChannelModel, type Options } from 'amqplib';

import {
  rabbitVersion, startRabbit, startUsher, type RunningBroker, type StoreCounters,
} from './amqp/brokers.js';
import { quantile, runRounds, type LatencyReport, type RoundBroker } from './amqp/latency-rounds.js';
import {
  ANSWER_LIMIT_MS, BODIES, CONFIRM_WINDOW, LATENCY_RATE, PREFETCH, durableConsume,
  durablePublish, latency, quick, transient, type Figure, type Target,
} from './amqp/workloads.js';
import { benchArgs } from './bench-args.js';

const args = benchArgs('npm run bench:amqp --', {
  messages: { type: 'string' },
  /** Latency: seconds a broker in all, split evenly between its rounds. */
  'latency-seconds': { type: 'string' },
  'latency-rounds': { type: 'string' },
  'client-no-delay': { type: 'boolean', default: false },
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
  /** Throughput runs each, brokers taking turns; the median run is shown. */
  repeats: { type: 'string', default: '1' },
  /** Flags for Usher's node process: --usher-node-flags="--cpu-prof --cpu-prof-dir=/tmp/p". */
  'usher-node-flags': { type: 'string', default: '' },
});
const MESSAGES = positive('messages', args.quick ? 1_000 : 100_000);
const LATENCY_SECONDS = positive('latency-seconds', args.quick ? 1 : 20);
const LATENCY_ROUNDS = positive('latency-rounds', args.quick ? 2 : 5);
if (!Number.isInteger(LATENCY_ROUNDS) || LATENCY_ROUNDS > 50) {
  throw new Error(`--latency-rounds takes a whole number from 1 to 50, not ${LATENCY_ROUNDS}`);
}
const WARM_UP = Math.min(2_000, MESSAGES);
// Untimed, before the latency rounds: each broker's paced path (small
// batches, acks beside publishes) warmed as the throughput runs do not.
// Usher's first 4 s round at 5,000 msg/s had TurboFan optimize 478
// functions and deoptimize 19, its second 134 and 21, its third 18 and 3
// (--trace-opt --trace-deopt), and the first rounds' p99 ran 1.5-2x the
// later ones'. The warm-up is rounds run exactly as the measured ones
// (runRounds), not one long round: with a single 8 s round, Usher's
// first measured round still deoptimized 25 functions, node's socket
// stream code among them, when the bench's first read of its /metrics
// (an HTTP socket beside the AMQP ones) came right before it, and ran
// 6-7.5 ms against 3-3.7 for the rest. Without those reads it had 1
// deoptimization and ran 3.3 ms. Each warm-up round also declares and
// deletes a queue of its own, as every measured round does.
const LATENCY_WARM_UP_ROUNDS = 2;
const LATENCY_WARM_UP_SECONDS = args.quick ? 0.5 : 8;
const PUBLISHERS = Number(args.publishers);
if (!Number.isInteger(PUBLISHERS) || PUBLISHERS < 1 || PUBLISHERS > 16) {
  throw new Error(`--publishers takes a whole number from 1 to 16, not "${args.publishers}"`);
}
// One throughput run a broker moved by as much from one bench to the
// next (durable 464 B publish: 1.76x in one, 2.03x in the next) as the
// brokers differ; with --repeats each run is made N times, the brokers
// taking turns, and the median run by rate is the one shown.
const REPEATS = Number(args.repeats);
if (!Number.isInteger(REPEATS) || REPEATS < 1 || REPEATS > 9) {
  throw new Error(`--repeats takes a whole number from 1 to 9, not "${args.repeats}"`);
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
  /**
   * Share of --messages. 16 KiB runs move as many as the others: at a
   * quarter (12,500 of 50,000, about 0.6 s) both brokers spent 15-65% more
   * CPU a message than over 50,000, first touching the memory they grow
   * into, which this virtual machine makes costly (see README, Storage).
   */
  share: number;
}

const ALL_SIZES: Array<Size & { key: string }> = [
  { key: 'tiny', label: '16 B', body: BODIES.tiny, share: 1 },
  { key: 'ticket', label: '464 B ticket', body: BODIES.ticket, share: 1 },
  { key: 'large', label: '16 KiB', body: BODIES.large, share: 1 },
];
const SIZE_KEYS = args.sizes?.split(',') ?? ALL_SIZES.map((size) => size.key);
for (const key of SIZE_KEYS) {
  if (!ALL_SIZES.some((size) => size.key === key)) {
    throw new Error(`--sizes takes tiny, ticket and large, not "${key}"`);
  }
}
const SIZES: Size[] = ALL_SIZES.filter((size) => SIZE_KEYS.includes(size.key));

// --- the run -------------------------------------------------------------

type Measure = 'rate' | 'p50' | 'p95' | 'p99' | 'p99.9';
const QUANTILES: Record<Exclude<Measure, 'rate'>, number> = {
  p50: 0.5, p95: 0.95, p99: 0.99, 'p99.9': 0.999,
};

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

/** Usher's log counters over a durable run, by the run's figure. */
const logDuring = new Map<Figure, StoreCounters>();

/** `run`, with Usher's log counters over it kept in logDuring. */
async function withLog(b: Broker,
  run: () => Promise<Figure | null | undefined>): Promise<Figure | null | undefined> {
  const read = () => b.running.storeCounters?.().catch(() => undefined);
  const before = await read();
  const figure = await run();
  const after = before === undefined ? undefined : await read();
  if (figure && before !== undefined && after !== undefined) {
    const delta = { ...after };
    for (const key of Object.keys(delta) as Array<keyof StoreCounters>) delta[key] -= before[key];
    logDuring.set(figure, delta);
  }
  return figure;
}

// amqplib leaves Nagle's algorithm on unless told; --client-no-delay sets
// TCP_NODELAY on the client's sockets, as most AMQP clients do. It found
// a fault: each frame then came in a read of its own, the log's ledger
// emptied between them and made a 340 KB table chunk each time, and the
// broker ran a full collection every 0.15 s (p99 17-20 ms; seq-table.ts).
const CLIENT_SOCKET = { noDelay: args['client-no-delay'] };

async function connect(t: Target): Promise<ChannelModel> {
  const model = await quick(amqp.connect(t.url, CLIENT_SOCKET), `connect ${t.url}`);
  model.on('error', (err: Error) => t.log(err.message));
  return model;
}

async function measure(brokers: Broker[]): Promise<{ rows: Row[]; latency?: LatencyReport }> {
  let serial = 0;
  const name = (b: Broker, what: string) => `bench-${what}-${b.column}-${serial++}`;
  const row = (workload: string, size: string, messages: number,
    measure: Measure = 'rate'): Row => ({ workload, size, messages, measure, figures: {} });

  // Untimed: JIT and caches warm in both brokers and in this client.
  // TODO(#4): not all of Usher's durable publish path. Its queue first
  // goes deep (the cold tier) in the timed run, which still compiles some
  // 70 functions with TurboFan (--trace-opt); the broker then spends
  // 10-40% more CPU a message on its first 100,000 than on its third, its
  // compiler threads 12-14% of its CPU against 6-9% (perf, load 5-8). A
  // warm-up of 20,000 did not close that gap, so it stays 2,000.
  // Each size warms its own paths: a 16 KiB body takes others than a
  // ticket's (written from the client's buffer, read ahead when cold).
  for (const b of brokers) {
    for (const size of SIZES) {
      const [quiet, loud] = [name(b, 'warm'), name(b, 'warm')];
      await attempt(b, 'transient', 'warm-up',
        (t, p, c) => transient(t, quiet, size.body, WARM_UP, p, c));
      await attempt(b, 'durable', 'warm-up',
        (t, _p, _c, ps) => durablePublish(t, loud, size.body, WARM_UP, ps));
      await attempt(b, 'durable', 'warm-up',
        (t, p, c) => durableConsume(t, loud, WARM_UP, c, p));
    }
  }
  progress('warm-up done');

  const rows: Row[] = [];
  const ofRepeats = REPEATS === 1 ? '' : `, median of ${REPEATS}`;
  for (const size of SIZES) {
    const count = Math.max(1, Math.round(MESSAGES * size.share));
    const transients = row(`transient, publish + auto-ack consume${ofRepeats}`, size.label, count);
    const over = PUBLISHERS === 1 ? '' : ` on each of ${PUBLISHERS} connections`;
    const publishes = row(
      `durable publish, confirms (${CONFIRM_WINDOW} in flight${over})${ofRepeats}`,
      size.label, count);
    const consumes = row(`durable consume, prefetch ${PREFETCH}, acks${ofRepeats}`,
      size.label, count);
    const tries = new Map<Row, Map<Column, Array<Figure | null | undefined>>>(
      [transients, publishes, consumes].map((r) => [r, new Map()]));
    const keep = (r: Row, column: Column, figure: Figure | null | undefined) => {
      const byColumn = tries.get(r)!;
      byColumn.set(column, [...(byColumn.get(column) ?? []), figure]);
    };
    for (let repeat = 0; repeat < REPEATS; repeat++) {
      for (const b of brokers) {
        const what = size.label;
        const [quiet, loud] = [name(b, 'transient'), name(b, 'durable')];
        if (runs('transient')) {
          keep(transients, b.column, await attempt(b, 'transient', what,
            (t, p, c) => transient(t, quiet, size.body, count, p, c)));
        }
        if (runs('durable')) {
          keep(publishes, b.column, await withLog(b, () => attempt(b, 'durable', what,
            (t, _p, _c, ps) => durablePublish(t, loud, size.body, count, ps))));
          keep(consumes, b.column, await withLog(b, () => attempt(b, 'durable', what,
            (t, p, c) => durableConsume(t, loud, count, c, p))));
        }
        progress(`${size.label} on ${b.column} done` +
          (REPEATS === 1 ? '' : ` (run ${repeat + 1} of ${REPEATS})`));
      }
    }
    for (const [r, byColumn] of tries) {
      for (const [column, figures] of byColumn) r.figures[column] = median(figures);
    }
    rows.push(transients, publishes, consumes);
  }

  if (!runs('latency')) return { rows };
  const round = (what: string, queue: string) => (b: RoundBroker, seconds: number) =>
    attempt(b as Broker, 'durable', what,
      (t, p, c) => latency(t, name(b as Broker, queue), seconds, p, c));
  await runRounds(brokers, LATENCY_WARM_UP_ROUNDS,
    LATENCY_WARM_UP_SECONDS / LATENCY_WARM_UP_ROUNDS, round('latency warm-up', 'warm'), () => {});
  progress('latency warm-up done');
  const report = await runRounds(brokers, LATENCY_ROUNDS, LATENCY_SECONDS / LATENCY_ROUNDS,
    round('latency', 'latency'), progress);
  const total = Math.round(LATENCY_RATE * LATENCY_SECONDS);
  const workload = `latency at ${LATENCY_RATE} msg/s, durable, confirms, ` +
    `${LATENCY_ROUNDS} rounds pooled`;
  for (const measure of ['p50', 'p95', 'p99', 'p99.9'] as const) {
    const quantileRow = row(`${workload}: ${measure}`, '464 B ticket', total, measure);
    for (const rounds of report.rounds) {
      quantileRow.figures[rounds.column as Column] = rounds.pooled;
    }
    rows.push(quantileRow);
  }
  return { rows, latency: report };
}

/**
 * The run of median rate among those that completed; if none did, the
 * first (failed, ended early, or no such queue), as a single run shows it.
 */
function median(figures: Array<Figure | null | undefined>): Figure | null | undefined {
  const ran = figures.filter(complete).sort((a, b) => value(a, 'rate') - value(b, 'rate'));
  return ran.length === 0 ? figures[0] : ran[Math.floor((ran.length - 1) / 2)];
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
  if (measure === 'rate') return f.messages / f.seconds;
  return quantile(f.samples!.total, QUANTILES[measure]);
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

function print(rows: Row[], latencyReport: LatencyReport | undefined, seconds: number,
  withRabbit: boolean): void {
  const out = (line = '') => console.log(line);
  out();
  out(withRabbit
    ? `Usher vs RabbitMQ ${rabbitVersion()} over AMQP 0-9-1, amqplib for both, ` +
      'brokers and client on one machine (loopback)'
    : 'Usher alone over AMQP 0-9-1 (--usher-only), amqplib');
  out(`--messages ${MESSAGES} --latency-seconds ${LATENCY_SECONDS}` +
    ` --latency-rounds ${LATENCY_ROUNDS}` +
    `${args.quick ? ' --quick' : ''}${PUBLISHERS === 1 ? '' : ` --publishers ${PUBLISHERS}`}` +
    `${REPEATS === 1 ? '' : ` --repeats ${REPEATS}`}`);
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
    const reach = row.measure === 'rate' ? ceilings(row) : undefined;
    if (reach !== undefined) out(`  - ${reach}`);
    const log = complete(row.figures.usher) ? logDuring.get(row.figures.usher) : undefined;
    if (log !== undefined) out(`  - Usher's log: ${logLine(log, row.figures.usher!)}`);
  }
  if (latencyReport !== undefined) printLatency(latencyReport);
  out();
  out(`Total time ${seconds.toFixed(0)} s.`);
}

/**
 * What Usher's rate could be at the CPU a message its run cost: the broker
 * alone on a core, amqplib alone on a core, and both sharing the machine's
 * cores; beside 2x RabbitMQ's best, the target. When amqplib's ceiling is
 * below the target, no broker reaches it with this client on this machine.
 */
function ceilings(row: Row): string | undefined {
  const usher = row.figures.usher;
  const rabbits = [row.figures.classic, row.figures.quorum].filter(complete);
  if (!complete(usher) || usher.messages === 0) return undefined;
  const brokerUs = 1e6 * usher.brokerCpu / usher.messages;
  const clientUs = 1e6 * usher.clientCpu / usher.messages;
  if (brokerUs <= 0 || clientUs <= 0) return undefined;
  const rate = (n: number) => Math.round(n).toLocaleString('en-US');
  const cores = availableParallelism();
  let text = `at these costs Usher's run could reach: broker on one core ${rate(1e6 / brokerUs)} ` +
    `msg/s, amqplib on one core ${rate(1e6 / clientUs)}, both on ${cores} cores ` +
    `${rate(cores * 1e6 / (brokerUs + clientUs))}`;
  if (rabbits.length > 0) {
    const target = 2 * Math.max(...rabbits.map((f) => value(f, 'rate')));
    text += `; 2x RabbitMQ's best is ${rate(target)}`;
    if (1e6 / clientUs < target) text += ' (above what amqplib alone can do here)';
  }
  return text;
}

/**
 * What Usher's log did in a run: the batches it wrote and synced (their
 * size says which line of a plain write + fdatasync yardstick applies:
 * bench/storage.ts), how many syncs overlapped (few while appends waited
 * on syncs: the publisher, not the disk, set the pace), how cold messages
 * came back, read ahead off the event loop or in line on it
 * (storage/frame-reader.ts), and how busy the event loop was (the
 * process's CPU also counts libuv's and V8's threads).
 */
function logLine(log: StoreCounters, f: Figure): string {
  const parts: string[] = [];
  if (log.batches > 0) {
    const mib = log.bytes / (1024 * 1024);
    parts.push(`${log.batches} batches of ${(log.bytes / log.batches / 1024).toFixed(0)} KiB ` +
      `on average, ${log.syncs} fdatasyncs (${log.syncsOverlapped} started beside another), ` +
      `${(mib / f.seconds).toFixed(0)} MiB/s`);
  }
  if (log.loopBusySeconds > 0) {
    parts.push(`event loop busy ${Math.round(100 * log.loopBusySeconds / f.seconds)}% of the run`);
  }
  const cold = log.framesReadAhead + log.framesReadInLine;
  if (cold > 0) {
    parts.push(`${cold} cold messages read back, ${log.framesReadAhead} of them read ahead, ` +
      `${log.framesReadInLine} read in line on the event loop`);
  }
  return parts.length === 0 ? 'nothing written or read back' : parts.join('; ');
}

/** Each round's p99 and load, where each broker's latency went, and Usher's log. */
function printLatency(report: LatencyReport): void {
  const out = (line = '') => console.log(line);
  const ms = (values: Float64Array, q: number) => quantile(values, q).toFixed(2);
  out();
  out(`Latency rounds of ${report.roundSeconds.toFixed(1)} s, brokers taking turns; ` +
    'p99 ms of each round in the order run, with the 1-minute load average as it began ' +
    'and how long the machine took to go quiet before it, and the median of those p99s ' +
    '(one bad round moves it least):');
  for (const rounds of report.rounds) {
    const loads = report.load.get(rounds.column) ?? [];
    const waits = report.settled.get(rounds.column) ?? [];
    const slow = report.slowBatches.get(rounds.column);
    const batches = (i: number) => {
      if (slow === undefined) return '';
      const counts = slow[i];
      return counts == null ? ', log batches ?' : `, log batches over 5/50 ms: ${counts[0]}/${counts[1]}`;
    };
    const quiet = (wait: number | null | undefined) => wait === undefined ? '?'
      : wait === null ? 'never quiet' : `quiet after ${wait.toFixed(1)} s`;
    const cells = rounds.figures.map((f, i) => {
      const p99 = f?.samples === undefined
        ? 'failed'
        : ms(Float64Array.from(f.samples.total).sort(), 0.99);
      return `${p99} (load ${loads[i]?.toFixed(1) ?? '?'}, ${quiet(waits[i])}${batches(i)})`;
    });
    const p99s = rounds.figures.flatMap((f) =>
      f?.samples === undefined ? [] : [quantile(Float64Array.from(f.samples.total).sort(), 0.99)]);
    const middle = Float64Array.from(p99s).sort();
    out(`- ${rounds.column}: ${cells.join(', ')}; median ${quantile(middle, 0.5).toFixed(2)}`);
  }

  out();
  out('Latency parts, pooled, p50 / p99 / p99.9 ms: lag from due time to publish ' +
    '(this client), publish to delivery, publish to confirm:');
  for (const { column, pooled } of report.rounds) {
    const parts = pooled?.samples;
    if (parts === undefined) continue;
    const triple = (values: Float64Array) =>
      `${ms(values, 0.5)} / ${ms(values, 0.99)} / ${ms(values, 0.999)}`;
    out(`- ${column}: lag ${triple(parts.lag)}, deliver ${triple(parts.deliver)}, ` +
      `confirm ${triple(parts.confirm)}`);
  }

  const log = report.log;
  if (log === null) return;
  const probe = log.probeSyncMs;
  out();
  out(`Usher's log in its rounds: ${log.batchesPerSecond.toFixed(0)} batches/s, ` +
    `${log.syncsPerSecond.toFixed(0)} fdatasyncs/s, ${log.bytesPerBatch.toFixed(0)} B a batch. ` +
    'This disk at that pace (a side probe after each round, nothing else of the bench ' +
    `running): fdatasync p50 ${ms(probe, 0.5)}, p99 ${ms(probe, 0.99)}, ` +
    `p99.9 ${ms(probe, 0.999)}, max ${ms(probe, 1)} ms (${probe.length} syncs).`);
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
    const { rows, latency: latencyReport } = await measure(brokers);
    print(rows, latencyReport, (performance.now() - began) / 1000, !args['usher-only']);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const broker of started) await broker.stop();
  }
}

function progress(text: string): void {
  process.stderr.write(`amqp-compare: ${text}\n`);
}

function positive(name: 'messages' | 'latency-seconds' | 'latency-rounds',
  fallback: number): number {
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
