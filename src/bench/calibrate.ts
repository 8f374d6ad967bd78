// `usher bench --calibrate FILE`: measures what `usher plan` multiplies,
// on this machine, against an Usher it starts itself (a child process on
// a temporary folder, AMQP on a free loopback port) so its CPU, memory and
// disk can be read from /proc and the folder:
//
//   A  publish 20k x 128 B, nobody consuming  -> CPU, RSS, disk per message
//   B  publish 20k x 4 KiB, nobody consuming  -> the same; A and B fit lines
//   C  publish and consume 20k x 1 KiB        -> consume CPU = C - publish
//   D  write 4 KiB + fdatasync for 1 s        -> fdatasync/s of the data disk
//
// RSS moves with the garbage collector: the memory line is a rough guide.

import { spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  fdatasyncSync,
  openSync,
  readdirSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { CliError } from '../cli/context.js';
import type { Calibration, Line } from '../plan/calibration.js';
import { AmqpDriver } from './amqp-driver.js';
import { processCpuSeconds, processRssBytes } from './cpu.js';
import { runBench, type BenchOptions } from './run.js';
import { bodyTemplate } from './stamp.js';

const USHER_BIN = fileURLToPath(new URL('../../../bin/usher', import.meta.url));
/** Messages a phase: enough for CPU figures that settle. */
export const CALIBRATION_MESSAGES = 20_000;
const SMALL = 128;
const LARGE = 4096;
const START_TIMEOUT_MS = 20_000;

export async function runCalibration(
  outFile: string,
  note: (line: string) => void,
  messages = CALIBRATION_MESSAGES,
): Promise<Calibration> {
  const dataDir = await mkdtemp(join(tmpdir(), 'usher-calibrate-'));
  const broker = await startBroker(dataDir);
  try {
    note(`calibrating against usher pid ${broker.pid} (data in ${dataDir})`);
    await settle();
    const idleRssBytes = processRssBytes(broker.pid) ?? 0;

    const small = await publishOnly(broker, dataDir, SMALL, messages);
    note(`A ${SMALL} B: ${fmt(small)}`);
    const large = await publishOnly(broker, dataDir, LARGE, messages);
    note(`B ${LARGE} B: ${fmt(large)}`);
    const publishCpuUs = fit(SMALL, small.cpuUs, LARGE, large.cpuUs);
    const { cpuUs: both, cpuTicks: bothTicks } = await publishAndConsume(broker, 1024, messages);
    const consumeCpuUs = Math.max(0, both - (publishCpuUs.base + publishCpuUs.perByte * 1024));
    note(
      `C 1024 B publish+consume: ${both.toFixed(1)} us/msg -> ` +
        `consume ${consumeCpuUs.toFixed(1)} us`,
    );
    const roughCpu = roughCpuWarning([small.cpuTicks, large.cpuTicks, bothTicks], messages);
    if (roughCpu !== null) note(`usher bench --calibrate: warning: ${roughCpu}`);
    const fsyncsPerSecond = measureFsyncs(dataDir);
    note(`D fdatasync: ${fsyncsPerSecond.toFixed(0)}/s`);

    const calibration: Calibration = {
      version: 1,
      measuredAt: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version },
      publishCpuUs,
      consumeCpuUs: round(consumeCpuUs),
      diskBytesPerMessage: fit(SMALL, small.diskBytes, LARGE, large.diskBytes),
      memoryBytesPerMessage: fit(SMALL, small.rssBytes, LARGE, large.rssBytes),
      idleRssBytes,
      fsyncsPerSecond: round(fsyncsPerSecond),
      notes:
        `usher bench --calibrate: ${messages} messages a phase over AMQP, confirm window 256; ` +
        'CPU from /proc of the broker process; memory is RSS growth and moves with GC.' +
        (roughCpu === null ? '' : ` Rough: ${roughCpu}`),
    };
    await writeFile(outFile, `${JSON.stringify(calibration, null, 2)}\n`);
    note(`calibration written to ${outFile}`);
    return calibration;
  } finally {
    await broker.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * /proc counts CPU in 10 ms ticks: a phase of a few ticks gives CPU per
 * message to within tens of percent. Below this many, say so.
 */
const MIN_CPU_TICKS = 50;

export function roughCpuWarning(phaseTicks: number[], messages: number): string | null {
  const fewest = Math.min(...phaseTicks);
  if (fewest >= MIN_CPU_TICKS) return null;
  return (
    `a phase used only ${fewest} CPU ticks (10 ms each) for ${messages} messages, so the CPU ` +
    `figures are rough; use a larger --count (the default is ${CALIBRATION_MESSAGES})`
  );
}

interface Phase {
  cpuUs: number;
  /** The broker's CPU over the phase, in /proc ticks (10 ms). */
  cpuTicks: number;
  rssBytes: number;
  diskBytes: number;
}

interface ChildBroker {
  pid: number;
  amqpUrl: string;
  stop(): Promise<void>;
}

async function publishOnly(
  broker: ChildBroker,
  dataDir: string,
  size: number,
  messages: number,
): Promise<Phase> {
  const rssBefore = processRssBytes(broker.pid) ?? 0;
  const diskBefore = folderBytes(dataDir);
  const cpuBefore = processCpuSeconds(broker.pid) ?? 0;
  // Kept until measured: the waiting messages are what is measured.
  const prefix = `calibrate-${size}`;
  const driver = new AmqpDriver(broker.amqpUrl);
  await runBench(options(driver, size, 0, prefix, true, messages));
  const cpuSeconds = (processCpuSeconds(broker.pid) ?? 0) - cpuBefore;
  await settle();
  const phase = {
    cpuUs: (cpuSeconds * 1e6) / messages,
    cpuTicks: Math.round(cpuSeconds * 100),
    rssBytes: Math.max(0, ((processRssBytes(broker.pid) ?? 0) - rssBefore) / messages),
    diskBytes: Math.max(0, (folderBytes(dataDir) - diskBefore) / messages),
  };
  await driver.teardown([`${prefix}-0`]);
  return phase;
}

async function publishAndConsume(
  broker: ChildBroker,
  size: number,
  messages: number,
): Promise<{ cpuUs: number; cpuTicks: number }> {
  const cpuBefore = processCpuSeconds(broker.pid) ?? 0;
  const result = await runBench(
    options(new AmqpDriver(broker.amqpUrl), size, 1, 'calibrate-both', false, messages),
  );
  if (result.lost > 0)
    throw new CliError(`calibration lost ${result.lost} messages; not writing figures`);
  const cpuSeconds = (processCpuSeconds(broker.pid) ?? 0) - cpuBefore;
  return { cpuUs: (cpuSeconds * 1e6) / messages, cpuTicks: Math.round(cpuSeconds * 100) };
}

function options(
  driver: AmqpDriver,
  size: number,
  consumers: number,
  prefix: string,
  keep: boolean,
  messages: number,
): BenchOptions {
  return {
    driver,
    producers: 1,
    consumers,
    queues: 1,
    body: bodyTemplate(size),
    profile: null,
    count: messages,
    durationMs: null,
    confirmWindow: 256,
    prefetch: 256,
    ackMode: 'manual',
    priorities: [0],
    nackShare: 0,
    persistent: true,
    drainTimeoutMs: 10_000,
    sampleMs: 1000,
    queuePrefix: prefix,
    keepQueues: keep,
  };
}

/**
 * A line through two measured points. A cost cannot shrink as bodies
 * grow: a negative slope is noise, and the mean is kept as a flat cost.
 */
function fit(x1: number, y1: number, x2: number, y2: number): Line {
  const perByte = (y2 - y1) / (x2 - x1);
  if (perByte < 0) return { base: round((y1 + y2) / 2), perByte: 0 };
  return { base: round(Math.max(0, y1 - perByte * x1)), perByte: Math.round(perByte * 1e4) / 1e4 };
}

function measureFsyncs(dir: string): number {
  const path = join(dir, 'fsync-probe');
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(4096, 1);
  const started = performance.now();
  let count = 0;
  try {
    // Bounded in count and time: at most 5000 syncs or one second.
    while (count < 5000 && performance.now() - started < 1000) {
      writeSync(fd, block);
      fdatasyncSync(fd);
      count++;
    }
  } finally {
    closeSync(fd);
    unlinkSync(path);
  }
  return count / ((performance.now() - started) / 1000);
}

function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? folderBytes(path) : statSync(path).size;
  }
  return total;
}

async function startBroker(dataDir: string): Promise<ChildBroker> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      USHER_BIN,
      'serve',
      '--data',
      dataDir,
      '--port',
      '0',
      '--amqp-port',
      '0',
      '--host',
      '127.0.0.1',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (text: string) => (out += text));
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (out += text));
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  const started = performance.now();
  while (!/usher listening on/.test(out)) {
    if (child.exitCode !== null || performance.now() - started > START_TIMEOUT_MS) {
      await stop();
      throw new CliError(`usher serve for calibration did not start: ${out.slice(-500)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const amqp = /(amqp:\/\/[\d.]+:\d+)/.exec(out);
  if (amqp === null) {
    await stop();
    throw new CliError('usher serve for calibration logged no AMQP URL');
  }
  const url = new URL(amqp[1]);
  return { pid: child.pid as number, amqpUrl: `amqp://guest:guest@${url.host}`, stop };
}

/** Lets the broker's timers and GC run before reading memory. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 500));
}

function fmt(phase: Phase): string {
  return (
    `${phase.cpuUs.toFixed(1)} us CPU, ${phase.diskBytes.toFixed(0)} B disk, ` +
    `${phase.rssBytes.toFixed(0)} B RSS per message`
  );
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
