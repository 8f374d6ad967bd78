// Memory per waiting message for the backlogs issue #3 names beside plain
// publishes: a dead-letter queue filled by dead-lettering, a FIFO queue
// with many groups, delayed messages, retried messages (each nacked once,
// back in an hour) and a reject-lowest-priority queue (priorities 0-9,
// maxLength the backlog). Each kind runs in a child
// process of its own (a fresh heap), durable with fdatasync, ticket events
// of 460 bytes; the figure is (RSS with the backlog - RSS of the same
// broker empty) / messages, after a full GC, beside the same figure for a
// plain best-effort backlog measured in the same run (the peer: new
// publishes were already cold before this work). Then the broker is
// closed and opened again on the same log: the time to serving, and the
// RSS growth over the process's RSS before the reopen. Last, consumers
// drain up to 200k of it (receive 100 + ack, 8 at a time) while the event
// loop's delay is sampled: cold bodies are read back synchronously on the
// loop (frame-reader.ts), and this shows what that costs a page-cache hit.
//
//   npm run bench:cold -- [--messages 1000000] [--groups 10000] [--dir DIR]

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import pino from 'pino';

import { Broker } from '../src/broker/broker.js';
import { benchArgs } from './bench-args.js';

const KINDS = ['plain', 'dlq', 'fifo', 'delayed', 'retried', 'rlp'] as const;
type Kind = (typeof KINDS)[number];

const args = benchArgs('npm run bench:cold --', {
  messages: { type: 'string', default: '1000000' },
  groups: { type: 'string', default: '10000' },
  dir: { type: 'string' },
  kind: { type: 'string' },
});
const MESSAGES = Number(args.messages);
const GROUPS = Number(args.groups);
const BATCH = 100;
const CONCURRENCY = 32;
const EVENT_BYTES = 460;

const body = Buffer.from(JSON.stringify(JSON.parse(
  readFileSync(new URL('../../examples/ticket-purchased.json', import.meta.url), 'utf8'),
)).padEnd(EVENT_BYTES, ' ').slice(0, EVENT_BYTES));

interface Result {
  kind: Kind;
  messages: number;
  bytesPerMessage: number;
  heapBytesPerMessage: number;
  rssMiB: number;
  fillSeconds: number;
  restartSeconds: number;
  restartRssGrowthMiB: number;
  drainPerSecond: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

/** Drains up to 200k messages of `queue`, sampling the event loop's delay. */
async function drainSampled(broker: Broker, queue: string) {
  const limit = Math.min(MESSAGES, 200_000);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  let drained = 0;
  const worker = async () => {
    while (drained < limit) {
      const messages = await broker.receive(queue, { max: BATCH, waitMs: 0 });
      if (messages.length === 0) return;
      drained += messages.length;
      await broker.ack(queue, messages.map((message) => message.receipt));
    }
  };
  delay.enable();
  const began = performance.now();
  await Promise.all(Array.from({ length: 8 }, worker));
  const seconds = (performance.now() - began) / 1000;
  delay.disable();
  return {
    drainPerSecond: Math.round(drained / seconds),
    loopDelayP99Ms: Number((delay.percentile(99) / 1e6).toFixed(1)),
    loopDelayMaxMs: Number((delay.max / 1e6).toFixed(1)),
  };
}

function settle(): { rss: number; heap: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const usage = process.memoryUsage();
  return { rss: usage.rss, heap: usage.heapUsed + usage.external + usage.arrayBuffers };
}

/** Runs `count` publishes of BATCH, CONCURRENCY batches in flight. */
async function publishAll(
  broker: Broker,
  queue: string,
  input: (index: number) => { group?: string; delayMs?: number; priority?: number },
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < MESSAGES) {
      const from = next;
      const size = Math.min(BATCH, MESSAGES - from);
      next += size;
      await broker.publish(queue, Array.from({ length: size }, (_, k) => ({
        body,
        ...input(from + k),
      })));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

/** Receives every message of `queue` and rejects it into its dead-letter queue. */
async function deadLetterAll(broker: Broker, queue: string): Promise<void> {
  const worker = async () => {
    for (;;) {
      const messages = await broker.receive(queue, { max: BATCH, waitMs: 0 });
      if (messages.length === 0) return;
      await Promise.all(messages.map((message) =>
        broker.nack(queue, message.receipt, { requeue: false, reason: 'bench' })));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

/** Receives every message of `queue` and nacks it for a retry an hour or two later. */
async function retryAll(broker: Broker, queue: string): Promise<void> {
  let retried = 0;
  const worker = async () => {
    while (retried < MESSAGES) {
      const messages = await broker.receive(queue, { max: BATCH, waitMs: 0 });
      if (messages.length === 0) return;
      retried += messages.length;
      await Promise.all(messages.map((message, k) => broker.nack(queue, message.receipt, {
        delayMs: 3_600_000 + (((retried + k) * 7919) % 3_600_000),
      })));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

async function measure(kind: Kind, dir: string): Promise<Result> {
  const open = () => Broker.open({
    dataDir: join(dir, 'data'),
    logger: pino({ level: 'silent' }),
    sync: true,
    diskFloorBytes: 0,
  });
  const broker = await open();
  await broker.createQueue('dlq', {});
  await broker.createQueue('q', { deadLetter: 'dlq', maxAttempts: 1 });
  await broker.createQueue('f', { fifo: true });
  await broker.createQueue('t', { maxAttempts: 10 });
  await broker.createQueue('r', { maxLength: MESSAGES, overflow: 'reject-lowest-priority' });
  // A warm-up round, so the empty figure includes code and buffers.
  await broker.publish('q', [{ body }]);
  await broker.ack('q', (await broker.receive('q', { max: 1, waitMs: 0 })).map((m) => m.receipt));
  const empty = settle();

  const began = performance.now();
  let queue = 'q';
  if (kind === 'plain') {
    await publishAll(broker, 'q', () => ({}));
  } else if (kind === 'dlq') {
    await publishAll(broker, 'q', () => ({}));
    await deadLetterAll(broker, 'q');
    queue = 'dlq';
  } else if (kind === 'fifo') {
    await publishAll(broker, 'f', (i) => ({ group: `customer-${i % GROUPS}` }));
    queue = 'f';
  } else if (kind === 'retried') {
    await publishAll(broker, 't', () => ({}));
    await retryAll(broker, 't');
    queue = 't';
  } else if (kind === 'rlp') {
    await publishAll(broker, 'r', (i) => ({ priority: (i * 7) % 10 }));
    queue = 'r';
  } else {
    // Due in one to two hours, spread out: nothing is released meanwhile.
    await publishAll(broker, 'q', (i) => ({ delayMs: 3_600_000 + ((i * 7919) % 3_600_000) }));
  }
  const fillSeconds = (performance.now() - began) / 1000;
  const full = settle();
  const stats = broker.getQueue(queue).stats;
  const waiting = stats.ready + stats.delayed;
  if (waiting !== MESSAGES) throw new Error(`${kind}: ${waiting} waiting, expected ${MESSAGES}`);
  await broker.close();

  const closed = settle();
  const reopening = performance.now();
  const reopened = await open();
  const restartSeconds = (performance.now() - reopening) / 1000;
  const again = reopened.getQueue(queue).stats;
  if (again.ready + again.delayed !== MESSAGES) throw new Error(`${kind}: lost at restart`);
  const restarted = settle();
  // A delayed or retried backlog has nothing ready to drain.
  const drain = kind === 'delayed' || kind === 'retried'
    ? { drainPerSecond: 0, loopDelayP99Ms: 0, loopDelayMaxMs: 0 }
    : await drainSampled(reopened, queue);
  await reopened.close();
  return {
    kind,
    messages: MESSAGES,
    bytesPerMessage: Math.round((full.rss - empty.rss) / MESSAGES),
    heapBytesPerMessage: Math.round((full.heap - empty.heap) / MESSAGES),
    rssMiB: Math.round(full.rss / 2 ** 20),
    fillSeconds: Math.round(fillSeconds),
    restartSeconds: Number(restartSeconds.toFixed(1)),
    restartRssGrowthMiB: Math.round((restarted.rss - closed.rss) / 2 ** 20),
    ...drain,
  };
}

async function main(): Promise<void> {
  if (args.kind !== undefined) {
    const dir = mkdtempSync(join(args.dir ?? tmpdir(), 'usher-bench-cold-'));
    try {
      process.stdout.write(`${JSON.stringify(await measure(args.kind as Kind, dir))}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }

  const script = fileURLToPath(import.meta.url);
  const results: Result[] = [];
  for (const kind of KINDS) {
    const passed = ['--messages', String(MESSAGES), '--groups', String(GROUPS), '--kind', kind];
    if (args.dir !== undefined) passed.push('--dir', args.dir);
    const child = spawnSync(process.execPath, ['--expose-gc', script, ...passed], {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    });
    if (child.status !== 0) throw new Error(`${kind} failed: ${child.stderr}`);
    results.push(JSON.parse(child.stdout.trim().split('\n').at(-1) as string) as Result);
  }

  const plain = results[0];
  console.log(`Memory per waiting message, ${MESSAGES} messages of ${EVENT_BYTES} bytes ` +
    `(FIFO: ${GROUPS} groups); peer: a plain backlog of new publishes`);
  for (const r of results) {
    console.log(`  ${r.kind.padEnd(8)} ${String(r.bytesPerMessage).padStart(5)} bytes/message RSS ` +
      `(${r.heapBytesPerMessage} heap), ${(r.bytesPerMessage / plain.bytesPerMessage).toFixed(2)}x ` +
      `plain; RSS ${r.rssMiB} MiB; filled in ${r.fillSeconds} s; restart ${r.restartSeconds} s ` +
      `(${(r.restartSeconds / plain.restartSeconds).toFixed(1)}x plain), ` +
      `RSS +${r.restartRssGrowthMiB} MiB; drain ${r.drainPerSecond}/s, loop delay ` +
      `p99 ${r.loopDelayP99Ms} ms, max ${r.loopDelayMaxMs} ms`);
  }
}

await main();
