// The two brokers of bench/amqp-compare.ts: `usher serve` as a child
// process on a fresh data folder, and a private RabbitMQ node started by
// bench/rabbitmq.sh in a fresh state folder. Both listen on loopback
// only, on ports checked free here; each is stopped by its own PID.

import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { freeRabbitPorts } from './rabbitmq-ports.js';
import { usherNodeFlags } from '../usher-flags.js';

/** A path from the repository's root, from dist/bench/amqp/. */
export const fromRoot = (path: string) => new URL(`../../../${path}`, import.meta.url).pathname;

/** How long a broker may take to start (RabbitMQ: about 5 s here). */
const START_LIMIT_MS = 120_000;
const STOP_LIMIT_MS = 60_000;

export interface RunningBroker {
  url: string;
  /** The process whose CPU counts as the broker's (RabbitMQ: beam.smp). */
  pid: number;
  /** The broker's own count of a queue's messages, for a stalled run. */
  depth(queue: string): Promise<string>;
  /** Usher only: its log's counters so far, from GET /metrics. */
  storeCounters?(): Promise<StoreCounters>;
  stop(): Promise<void>;
}

/** Totals since the broker started. */
export interface StoreCounters {
  batches: number;
  syncs: number;
  /** Synced batches started while another was syncing. */
  syncsOverlapped: number;
  bytes: number;
  /** Time the broker's event loop ran (all its JavaScript; one thread). */
  loopBusySeconds: number;
  /** Cold messages read back from frames read ahead, and read in line. */
  framesReadAhead: number;
  framesReadInLine: number;
  /** Batches whose write and sync took over 5 ms, and over 50 ms (usher_store_batch_seconds). */
  batchesOver5ms: number;
  batchesOver50ms: number;
}

// --- Usher ---------------------------------------------------------------

/**
 * `usher serve` with HTTP and AMQP on port 0 (the kernel picks free
 * ones); the URLs are read from its log lines. `nodeFlags` go to node
 * itself, e.g. --cpu-prof for profiling the broker under the bench.
 */
export async function startUsher(nodeFlags: string[] = [],
  onWarning: (line: string) => void = () => {}): Promise<RunningBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'usher-amqp-bench-'));
  const child = spawn(process.execPath, [...usherNodeFlags(), ...nodeFlags, fromRoot('bin/usher'), 'serve',
    '--data', dir, '--host', '127.0.0.1', '--port', '0', '--amqp-port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: dir,
  });

  let amqpUrl = '';
  let httpUrl = '';
  const ready = new Promise<void>((resolve, reject) => {
    let pending = '';
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      const lines = (pending + text).split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        const entry = parseLogLine(line);
        // Not pino's: node's own output (--trace-gc, say) goes to stderr.
        if (entry === null) {
          if (line.trim() !== '') process.stderr.write(`${line}\n`);
          continue;
        }
        if (typeof entry.amqpUrl === 'string') amqpUrl = entry.amqpUrl;
        if (typeof entry.url === 'string') {
          httpUrl = entry.url;
          resolve();
        }
        // pino levels: 40 warn, 50 error, 60 fatal.
        if (Number(entry.level) >= 40) onWarning(line);
      }
    });
    child.once('exit', (code) =>
      reject(new Error(`usher serve exited (${code}) before listening`)));
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), START_LIMIT_MS);
  try {
    await ready;
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  } finally {
    clearTimeout(timer);
  }
  if (amqpUrl === '') {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
    throw new Error('usher serve logged no AMQP URL');
  }

  return {
    // Usher accepts guest/guest from loopback, as RabbitMQ does.
    url: amqpUrl.replace('amqp://', 'amqp://guest:guest@'),
    pid: child.pid!,
    async depth(queue) {
      const answer = await fetch(`${httpUrl}/queues/${encodeURIComponent(queue)}`,
        { signal: AbortSignal.timeout(5_000) });
      const { stats } = await answer.json() as { stats: Record<string, number> };
      return `ready ${stats.ready}, in flight ${stats.inFlight}`;
    },
    async storeCounters() {
      const answer = await fetch(`${httpUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
      const text = await answer.text();
      const counter = (name: string) =>
        Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
      const timed = counter('usher_store_batch_seconds_count');
      const within = (le: string) => counter(`usher_store_batch_seconds_bucket\\{le="${le}"\\}`);
      return {
        batchesOver5ms: timed - within('0.005'),
        batchesOver50ms: timed - within('0.05'),
        batches: counter('usher_store_batches_total'),
        syncs: counter('usher_store_syncs_total'),
        syncsOverlapped: counter('usher_store_syncs_overlapped_total'),
        bytes: counter('usher_store_written_bytes_total'),
        loopBusySeconds: counter('usher_event_loop_busy_seconds_total'),
        framesReadAhead: counter('usher_store_frames_read_ahead_total'),
        framesReadInLine: counter('usher_store_frames_read_in_line_total'),
      };
    },
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function parseLogLine(line: string): Record<string, unknown> | null {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** SIGTERM (a clean close, which --cpu-prof needs), SIGKILL if it hangs. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_LIMIT_MS);
  await exited;
  clearTimeout(timer);
}

// --- RabbitMQ ------------------------------------------------------------

/**
 * A RabbitMQ node through bench/rabbitmq.sh. Its state folder and ports
 * are the caller's when USHER_RABBIT_DIR and USHER_RABBIT_AMQP_PORT with
 * USHER_RABBIT_DIST_PORT are set (as for the script itself), so helpers
 * sharing a machine can keep apart; otherwise a fresh folder, removed
 * at the end, and free ports picked here. A folder given is left in place.
 */
export async function startRabbit(): Promise<RunningBroker> {
  const givenDir = process.env.USHER_RABBIT_DIR;
  const dir = givenDir || mkdtempSync(join(tmpdir(), 'usher-amqp-bench-rabbit-'));
  const ports = givenRabbitPorts() ?? await freeRabbitPorts();
  const env = {
    ...process.env,
    USHER_RABBIT_DIR: dir,
    USHER_RABBIT_AMQP_PORT: String(ports.amqp),
    USHER_RABBIT_DIST_PORT: String(ports.dist),
  };
  const script = (...command: string[]) => rabbitScript(env, ...command);
  const stop = async () => {
    await script('stop').catch((err: Error) =>
      process.stderr.write(`rabbitmq.sh stop failed: ${err.message}\n`));
    if (!givenDir) rmSync(dir, { recursive: true, force: true });
  };

  try {
    const url = await script('start');
    const pid = Number(await script('pid'));
    return {
      url,
      pid,
      async depth(queue) {
        const listing = await script('ctl', 'list_queues', '-q', 'name',
          'messages_ready', 'messages_unacknowledged');
        const row = listing.split('\n').find((line) => line.startsWith(`${queue}\t`));
        const [, ready, unacked] = row?.split('\t') ?? [];
        return row === undefined ? 'no such queue' : `ready ${ready}, unacked ${unacked}`;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The ports in USHER_RABBIT_AMQP_PORT and _DIST_PORT; null if neither is set. */
function givenRabbitPorts(): { amqp: number; dist: number } | null {
  const { USHER_RABBIT_AMQP_PORT: amqp, USHER_RABBIT_DIST_PORT: dist } = process.env;
  if (!amqp && !dist) return null;
  const ports = { amqp: Number(amqp), dist: Number(dist) };
  for (const [name, given] of [['AMQP', amqp], ['DIST', dist]]) {
    const port = Number(given);
    if (!Number.isInteger(port) || port < 1024 || port > 65_000) {
      throw new Error(`USHER_RABBIT_${name}_PORT must be a port from 1024 to 65000 ` +
        `(set both or neither), not "${given ?? ''}"`);
    }
  }
  return ports;
}

/** bench/rabbitmq.sh with `command`: its stdout; its stderr passes through. */
async function rabbitScript(env: NodeJS.ProcessEnv, ...command: string[]): Promise<string> {
  const running = promisify(execFile)('bash', [fromRoot('bench/rabbitmq.sh'), ...command],
    { env, timeout: START_LIMIT_MS });
  running.child.stderr?.pipe(process.stderr);
  return (await running).stdout.trim();
}

export function rabbitVersion(): string {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', 'rabbitmq-server']).toString();
  } catch {
    return '(version unknown)';
  }
}

// --- CPU -----------------------------------------------------------------

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString()) || 100;

/** CPU seconds (user + system) process `pid` has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may hold spaces: utime and
  // stime are the 14th and 15th of the whole line (proc(5)).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** CPU seconds the whole machine has spent busy since boot. */
export function machineCpuSeconds(): number {
  // cpu  user nice system idle iowait irq softirq steal ...
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const idle = ticks[3] + ticks[4];
  return (ticks.reduce((sum, n) => sum + n, 0) - idle) / CLOCK_TICKS;
}
