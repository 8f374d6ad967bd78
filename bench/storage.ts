// The storage targets of issue #3, measured on one broker in this process
// (no HTTP: the figures are the log's and the queues', not the wire's),
// durable with fdatasync before every confirm, ticket events of 460 bytes.
//
//   1. baseline, after a warm-up round: publish a small queue (5% of the backlog) and drain it,
//      giving the empty-queue publish and consume rates;
//   2. grow a backlog of N messages, sampling RSS, and compare the publish
//      rate of the last stretch with the empty-queue rate;
//   3. restart: close and reopen the broker with the backlog in the log,
//      in a new process: first ignoring checkpoints (full replay); then as
//      after a crash, from the last checkpoint written while the backlog
//      grew (the one of the close deleted) and the log after it; then from
//      the checkpoint of a clean close;
//   4. drain the backlog with consumers (receive + ack), compared with the
//      empty-queue consume rate;
//   5. bytes the log wrote over the full cycle per body byte published;
//   6. the yardstick, same run and folder: plain sequential write +
//      fdatasync of the bytes the log wrote while the backlog grew, in the
//      batch sizes the log used; run twice, the faster counts.
//
//   npm run bench:storage -- [--messages 1000000] [--batch 100]
//     [--concurrency 32] [--dir DIR]

import { spawnSync } from 'node:child_process';
import {
  closeSync, fdatasyncSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import pino from 'pino';

import { Broker } from '../src/broker/broker.js';
import { listCheckpoints } from '../src/storage/checkpoint-file.js';
import { benchArgs } from './bench-args.js';

const args = benchArgs('npm run bench:storage --', {
  messages: { type: 'string', default: '1000000' },
  batch: { type: 'string', default: '100' },
  concurrency: { type: 'string', default: '32' },
  dir: { type: 'string' },
  reopen: { type: 'string' },
  'no-checkpoint': { type: 'boolean', default: false },
  'drop-newest-checkpoint': { type: 'boolean', default: false },
});
const MESSAGES = Number(args.messages);
const BATCH = Number(args.batch);
const CONCURRENCY = Number(args.concurrency);
const WINDOW = Math.max(10_000, Math.round(MESSAGES * 0.05));
const EVENT_BYTES = 460;
const MiB = 1024 * 1024;

const body = Buffer.from(JSON.stringify(JSON.parse(
  readFileSync(new URL('../../examples/ticket-purchased.json', import.meta.url), 'utf8'),
)).padEnd(EVENT_BYTES, ' ').slice(0, EVENT_BYTES));
const logger = pino({ level: 'silent' });
const root = args.reopen ?? mkdtempSync(join(args.dir ?? tmpdir(), 'usher-bench-storage-'));
const dataDir = join(root, 'data');

const rss = () => process.memoryUsage().rss;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(0)} MiB`;
const rate = (count: number, ms: number) => Math.round(count / (ms / 1000));
const pct = (part: number, whole: number) => `${((part / whole) * 100).toFixed(0)}%`;

function open(checkpoints = true): Promise<Broker> {
  return Broker.open({
    dataDir, logger, sync: true, diskFloorBytes: 0, checkpoints: { enabled: checkpoints },
  });
}

/** Publishes `count` messages to `queue`, CONCURRENCY batches in flight. */
async function publish(
  broker: Broker,
  queue: string,
  count: number,
  onProgress?: (done: number) => void,
): Promise<number> {
  let next = 0;
  let done = 0;
  const began = performance.now();
  const worker = async () => {
    while (next < count) {
      const size = Math.min(BATCH, count - next);
      next += size;
      await broker.publish(queue, inputs(size));
      done += size;
      onProgress?.(done);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return performance.now() - began;
}

/**
 * `size` messages of the event. A loop, not Array.from with a mapping
 * function over { length }, which cost ~45 ns a message: 3-4% of the
 * growth's main thread, counted as the log's though the producer's.
 */
function inputs(size: number): { body: Buffer }[] {
  const batch = new Array<{ body: Buffer }>(size);
  for (let i = 0; i < size; i++) batch[i] = { body };
  return batch;
}

/** Receives and acks until `queue` is empty; returns the time taken. */
async function drain(broker: Broker, queue: string): Promise<{ ms: number; count: number }> {
  let count = 0;
  const began = performance.now();
  const worker = async () => {
    for (;;) {
      const messages = await broker.receive(queue, { max: BATCH, waitMs: 0 });
      if (messages.length === 0) return;
      await broker.ack(queue, messages.map((message) => message.receipt));
      count += messages.length;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { ms: performance.now() - began, count };
}

/** Sequential write + fdatasync of `total` bytes in `batchBytes` pieces. */
function yardstick(total: number, batchBytes: number): number {
  const path = join(root, 'yardstick');
  const chunk = Buffer.alloc(batchBytes, 0x61);
  const fd = openSync(path, 'w');
  const began = performance.now();
  try {
    for (let written = 0; written < total; written += batchBytes) {
      writeSync(fd, chunk, 0, Math.min(batchBytes, total - written));
      fdatasyncSync(fd);
    }
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
  return performance.now() - began;
}

async function main(): Promise<void> {
  console.log(`Usher storage bench: ${MESSAGES} ticket events of ${EVENT_BYTES} bytes, ` +
    `batches of ${BATCH}, ${CONCURRENCY} in flight, fdatasync before confirm, data in ${root}`);
  const rssAtStart = rss();
  // Nulled before the second open, so that two copies of the backlog do
  // not share the heap.
  let broker: Broker | null = await open();
  await broker.createQueue('empty', {});
  await broker.createQueue('backlog', {});

  // Warm-up, so the baseline is not measured on cold code.
  await publish(broker, 'empty', WINDOW);
  await drain(broker, 'empty');

  // 1. Baseline on a queue that starts empty.
  const baselinePublishMs = await publish(broker, 'empty', WINDOW);
  const baselineDrain = await drain(broker, 'empty');
  const publishBaseline = rate(WINDOW, baselinePublishMs);
  const consumeBaseline = rate(baselineDrain.count, baselineDrain.ms);

  // 2. The backlog grows; the last WINDOW messages are timed apart. Each
  // tenth's rate and this process's CPU per message (user + system) say
  // whether a slowdown is work (CPU per message grows) or waiting.
  const samples: string[] = [];
  const tenths: string[] = [];
  let nextSample = MESSAGES / 10;
  let peakRss = rss();
  let lastWindowStart = 0;
  let tenthStart = { at: performance.now(), done: 0, cpu: process.cpuUsage() };
  const before = broker.health().store;
  const growthCpu = process.cpuUsage();
  const growthMainStart = mainThread();
  const growthMs = await publish(broker, 'backlog', MESSAGES, (done) => {
    if (done >= MESSAGES - WINDOW && lastWindowStart === 0) lastWindowStart = performance.now();
    if (done >= nextSample) {
      peakRss = Math.max(peakRss, rss());
      samples.push(`${Math.round(done / 1000)}k: ${mib(rss())}`);
      nextSample += MESSAGES / 10;
      const now = performance.now();
      const cpu = process.cpuUsage(tenthStart.cpu);
      const count = done - tenthStart.done;
      tenths.push(`${rate(count, now - tenthStart.at)} msg/s at ` +
        `${(cpu.user / count).toFixed(1)} + ${(cpu.system / count).toFixed(1)} µs`);
      tenthStart = { at: now, done, cpu: process.cpuUsage() };
    }
  });
  const lastWindowMs = performance.now() - lastWindowStart;
  // This process's CPU over all its threads: the main thread's, the
  // writes and syncs of libuv's pool, V8's collector helpers. The log is
  // CPU-bound (issue #3), so this is the figure to cut, and it depends
  // less on the machine's load than the rates do.
  const { user: growthUser, system: growthSystem } = process.cpuUsage(growthCpu);
  const growthMain = mainThread(growthMainStart);
  const grown = broker.health().store;
  const growthLogBytes = grown.bytesWritten - before.bytesWritten;
  const growthBatches = grown.batches - before.batches;
  const rssWithBacklog = rss();
  // What the RSS is made of: V8's heap (JS objects, committed pages
  // included) and memory outside it (the typed arrays of the ledger and
  // the cold deques, buffers); the rest is code, stacks and allocator slack.
  const memory = process.memoryUsage();
  const writtenBeforeRestart = grown.bytesWritten;

  // The empty queue again, the backlog waiting beside it. Past a few GB
  // written, this disk's kernel work per page grows (system time per
  // message 0.4 -> 1.7 µs in the 10M run), and an empty queue pays that
  // too: this rate tells what the deep queue costs from what the volume
  // written costs. Not in the write amplification below (its bytes come
  // after writtenBeforeRestart and its bodies are not counted).
  const laterPublishMs = await publish(broker, 'empty', WINDOW);
  await drain(broker, 'empty');
  const publishLater = rate(WINDOW, laterPublishMs);

  // 3. Restart with the backlog, in a fresh process as after a crash.
  await broker.close();
  // With the checkpoint the close wrote.
  const growthCheckpointBytes = broker.health().store.checkpointBytesWritten;
  broker = null;
  const fullReplay = reopenInChild(['--no-checkpoint']);
  // This one's close writes a checkpoint of the end of the log again.
  const afterCrash = reopenInChild(['--drop-newest-checkpoint']);
  const restart = reopenInChild([]);
  for (const reopened of [fullReplay, afterCrash, restart]) {
    if (reopened.messages !== MESSAGES) {
      throw new Error(`restart found ${reopened.messages} of ${MESSAGES}`);
    }
  }
  broker = await open();

  // 4. Drain the backlog.
  const backlogDrain = await drain(broker, 'backlog');
  // Let reclamation finish: the last acks' batch triggers it.
  await broker.publish('empty', [{ body }]);
  const afterDrain = broker.health().store;
  await broker.close();
  const drainCheckpointBytes = broker.health().store.checkpointBytesWritten;

  // 5. Bytes written over the cycle, per body byte published.
  const bodyBytes = (MESSAGES + 2 * WINDOW + 1) * EVENT_BYTES;
  const logBytes = writtenBeforeRestart + afterDrain.bytesWritten;
  const checkpointBytes = growthCheckpointBytes + drainCheckpointBytes;

  // 6. The disk's own rate for the same bytes in the same batch sizes.
  // Twice, and the log is held to the faster: one run alone swung from
  // 357 to 687 MiB/s on this disk within an hour (1 GB in 545 KiB
  // batches), and the first, right after the drain, is often the slower.
  const batchBytes = Math.max(4096, Math.round(growthLogBytes / growthBatches));
  const yardstickRuns = [yardstick(growthLogBytes, batchBytes), yardstick(growthLogBytes, batchBytes)];
  const yardstickMs = Math.min(...yardstickRuns);
  const logRate = growthLogBytes / (growthMs / 1000);
  const diskRate = growthLogBytes / (yardstickMs / 1000);

  const lastWindowRate = rate(WINDOW, lastWindowMs);
  const drainRate = rate(backlogDrain.count, backlogDrain.ms);
  console.log(`
Backlog of ${MESSAGES} (targets: RSS < 600 MB at 10M; publish >= 80% of empty-queue rate)
  RSS at start ${mib(rssAtStart)}, while growing ${samples.join(', ')}
  each tenth: ${tenths.join(', ')} (CPU per message, user + system)
  RSS with the backlog ${mib(rssWithBacklog)} (peak sampled ${mib(peakRss)}), ` +
    `${Math.round((rssWithBacklog - rssAtStart) / MESSAGES)} bytes per message
  of it: V8 heap ${mib(memory.heapUsed)} used of ${mib(memory.heapTotal)}, ` +
    `array buffers ${mib(memory.arrayBuffers)} ` +
    `(${Math.round(memory.arrayBuffers / MESSAGES)} bytes per message), ` +
    `other external ${mib(memory.external - memory.arrayBuffers)}
  publish, empty queue: ${publishBaseline} msg/s; last ${WINDOW} of the backlog: ` +
    `${lastWindowRate} msg/s = ${pct(lastWindowRate, publishBaseline)}; whole growth ` +
    `${rate(MESSAGES, growthMs)} msg/s = ${pct(rate(MESSAGES, growthMs), publishBaseline)}
  publish, empty queue again after the growth (backlog waiting, log ` +
    `${mib(writtenBeforeRestart)} written): ${publishLater} msg/s; the last ${WINDOW} of the ` +
    `backlog = ${pct(lastWindowRate, publishLater)} of it

Restart with ${MESSAGES} waiting, new process (target: 10M in < 20 s, RSS after < 600 MB at 10M)
  without a checkpoint (full replay): ${(fullReplay.ms / 1000).toFixed(2)} s to serving; ` +
    `${rate(MESSAGES, fullReplay.ms)} msg/s; ${fullReplay.replayedRecords} records replayed; ` +
    `RSS after ${mib(fullReplay.rss)}
  as after a crash, from the last checkpoint while growing ` +
    `(${afterCrash.fromCheckpoint ? 'loaded' : 'none: full replay'}): ` +
    `${(afterCrash.ms / 1000).toFixed(2)} s = ${pct(afterCrash.ms, fullReplay.ms)} of the full replay; ` +
    `${afterCrash.replayedRecords} records replayed; RSS after ${mib(afterCrash.rss)}
  from the checkpoint of the close: ${(restart.ms / 1000).toFixed(2)} s to serving ` +
    `= ${pct(restart.ms, fullReplay.ms)} of the full replay; ${restart.replayedRecords} records replayed; ` +
    `RSS after ${mib(restart.rss)}
  checkpoints while growing: ${grown.checkpointsWritten}, the last ${mib(grown.checkpointBytes)} ` +
    `in ${(grown.checkpointMs / 1000).toFixed(2)} s; longest event-loop stall writing them ` +
    `${grown.checkpointMaxStallMs.toFixed(1)} ms

Drain (target: >= 80% of empty-queue consume rate)
  empty-queue consume+ack: ${consumeBaseline} msg/s; backlog drain: ${drainRate} msg/s = ` +
    `${pct(drainRate, consumeBaseline)}

Write amplification (target: <= 1.3 over publish-consume-ack)
  ${mib(logBytes)} written for ${mib(bodyBytes)} of bodies = ${(logBytes / bodyBytes).toFixed(2)} ` +
    `bytes per body byte; checkpoints wrote ${mib(checkpointBytes)} more = ` +
    `${((logBytes + checkpointBytes) / bodyBytes).toFixed(2)} with them; ${afterDrain.compactedMessages} compaction copies; ` +
    `${afterDrain.segments} segment(s), ${mib(afterDrain.diskBytes)} left on disk

Throughput against the disk (target: >= 50% of plain write + fdatasync)
  log while growing: ${(logRate / MiB).toFixed(1)} MiB/s in ${growthBatches} batches of ` +
    `${(batchBytes / 1024).toFixed(0)} KiB on average, ` +
    `${((growthUser + growthSystem) / MESSAGES).toFixed(2)} µs of CPU a message ` +
    `(${(growthUser / MESSAGES).toFixed(2)} user + ${(growthSystem / MESSAGES).toFixed(2)} system)` +
    (growthMain === undefined ? '' : `; of it the main thread ` +
      `${(growthMain.user / MESSAGES).toFixed(2)} user + ` +
      `${(growthMain.system / MESSAGES).toFixed(2)} system, ` +
      `busy ${pct(growthMain.user + growthMain.system, growthMs * 1000)} of the time and ` +
      `waiting for a CPU ${pct(growthMain.waiting, growthMs * 1000)}`) + `
  yardstick, same bytes and batch size, the faster of two runs: ` +
    `${(diskRate / MiB).toFixed(1)} MiB/s (runs of ` +
    `${yardstickRuns.map((ms) => (ms / 1000).toFixed(1)).join(' and ')} s); ` +
    `log = ${pct(logRate, diskRate)} of it
`);
}

/**
 * The main thread alone (Linux: /proc), in µs since `since` if given;
 * undefined elsewhere. user and system: its CPU time, in clock ticks of
 * 10 ms. waiting: its time runnable but waiting for a CPU, which the
 * machine's other load decides. The rest of process.cpuUsage is libuv's
 * pool (the writes and syncs) and V8's helpers: the main thread is the
 * one that encodes and applies, and its share of the wall clock says
 * whether the log waits for it or it waits for the disk.
 */
function mainThread(since?: MainThreadTimes): MainThreadTimes | undefined {
  let fields: string[];
  let schedstat: string[];
  try {
    const task = `/proc/self/task/${process.pid}`;
    const stat = readFileSync(`${task}/stat`, 'utf8');
    fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    schedstat = readFileSync(`${task}/schedstat`, 'utf8').split(' ');
  } catch {
    return undefined;
  }
  // utime and stime: fields 14 and 15 of stat(5), 12 and 13 after the
  // name; schedstat: time on a CPU, then waiting for one, in ns.
  const TICK_US = 10_000;
  return {
    user: Number(fields[11]) * TICK_US - (since?.user ?? 0),
    system: Number(fields[12]) * TICK_US - (since?.system ?? 0),
    waiting: Number(schedstat[1]) / 1000 - (since?.waiting ?? 0),
  };
}

interface MainThreadTimes {
  user: number;
  system: number;
  waiting: number;
}

interface Reopened {
  ms: number;
  rss: number;
  messages: number;
  replayedRecords: number;
  fromCheckpoint: boolean;
}

function reopenInChild(flags: string[]): Reopened {
  const script = fileURLToPath(import.meta.url);
  const child = spawnSync(process.execPath, [script, '--reopen', root, ...flags], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`reopening failed: ${child.stderr}`);
  return JSON.parse(child.stdout) as Reopened;
}

// The child: time Broker.open on the data folder, print it as JSON.
async function reopen(): Promise<void> {
  if (args['drop-newest-checkpoint']) {
    const log = join(dataDir, 'log');
    const [newest] = listCheckpoints(readdirSync(log), log);
    if (newest !== undefined) rmSync(newest.path);
  }
  const began = performance.now();
  const broker = await open(!args['no-checkpoint']);
  const ms = performance.now() - began;
  const messages = broker.getQueue('backlog').stats.total;
  const { replayedRecords, openedFromCheckpoint } = broker.health().store;
  const result: Reopened = {
    ms, rss: rss(), messages, replayedRecords, fromCheckpoint: openedFromCheckpoint === 1,
  };
  await broker.close();
  console.log(JSON.stringify(result));
}

if (args.reopen !== undefined) {
  await reopen();
} else {
  try {
    await main();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
