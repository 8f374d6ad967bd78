// Usher's HTTP throughput and latency with durable ticket events.
//
// Starts `usher serve` as its own process on a fresh data folder (fsync on,
// the default), then drives it from this process over keep-alive HTTP:
//   1. publish, one message per request, many requests in flight
//   2. publish, batches of 100
//   3. receive batches of 100 and ack them (consume + ack)
// and, as the yardstick measured in the same run on the same disk, plain
// sequential write + fdatasync of the same bytes in the same batch sizes.
// Prints rates, latency p50/p99 per request, and the ratio to the yardstick.
//
//   npm run bench -- [--messages N] [--concurrency N]

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';

import { usherNodeFlags } from './usher-flags.js';
import { benchArgs } from './bench-args.js';

const args = benchArgs('npm run bench --', {
  messages: { type: 'string', default: '20000' },
  concurrency: { type: 'string', default: '64' },
  port: { type: 'string', default: '18080' },
});
const MESSAGES = Number(args.messages);
const CONCURRENCY = Number(args.concurrency);
const PORT = Number(args.port);
const BASE = `http://127.0.0.1:${PORT}`;
const TIME_LIMIT_MS = 120_000;

// The ticket event as compact JSON padded with trailing spaces to 464
// bytes, the size the peers' figures in the brief were measured with.
const EVENT_BYTES = 464;
const ticket = JSON.stringify(JSON.parse(
  readFileSync(new URL('../../examples/ticket-purchased.json', import.meta.url), 'utf8'),
)).padEnd(EVENT_BYTES, ' ');
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

interface Result {
  name: string;
  messages: number;
  seconds: number;
  latency: RecordableHistogram;
}

// --- HTTP ----------------------------------------------------------------

function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      `${BASE}${path}`,
      {
        method,
        agent,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : null });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function expectOk(method: string, path: string, body?: unknown) {
  const answer = await call(method, path, body);
  if (answer.status >= 300) {
    throw new Error(`${method} ${path} answered ${answer.status}: ${JSON.stringify(answer.json)}`);
  }
  return answer.json;
}

function ticketEvent(index: number): string {
  return ticket.replace('TCKT-98423', `TCKT-${String(index).padStart(5, '0')}`);
}

// --- workloads -----------------------------------------------------------

/** Runs `task` `count` times with CONCURRENCY in flight, timing each call. */
async function drive(name: string, count: number, perCall: number,
  task: (index: number) => Promise<number>): Promise<Result> {
  const latency = createHistogram();
  let next = 0;
  let done = 0;
  const began = performance.now();
  const deadline = began + TIME_LIMIT_MS;

  async function worker() {
    while (next < count && performance.now() < deadline) {
      const index = next++;
      const start = process.hrtime.bigint();
      const settled = await task(index);
      if (settled === 0) continue; // an empty poll: no message was moved
      done += settled;
      latency.record(Number(process.hrtime.bigint() - start) || 1);
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - began) / 1000;
  return { name, messages: done * perCall, seconds, latency };
}

async function publishSingles(queue: string): Promise<Result> {
  return drive('publish, 1 per request', MESSAGES, 1, async (index) => {
    await expectOk('POST', `/queues/${queue}/messages`, { body: ticketEvent(index) });
    return 1;
  });
}

async function publishBatches(queue: string): Promise<Result> {
  const batches = Math.ceil(MESSAGES / 100);
  return drive('publish, 100 per request', batches, 100, async (index) => {
    const messages = Array.from({ length: 100 }, (_, i) => ({ body: ticketEvent(index * 100 + i) }));
    await expectOk('POST', `/queues/${queue}/messages/batch`, { messages });
    return 1;
  });
}

async function consumeAndAck(queue: string, total: number): Promise<Result> {
  let consumed = 0;
  // Enough calls for empty polls too; a call after the last message is a no-op.
  const result = await drive('receive 100 + ack', Math.ceil(total / 100) * 4, 1, async () => {
    if (consumed >= total) return 0;
    const { messages } = await expectOk('POST', `/queues/${queue}/receive`, { max: 100, waitMs: 200 });
    if (messages.length === 0) return 0;
    await expectOk('POST', `/queues/${queue}/ack`, {
      receipts: messages.map((m: { receipt: string }) => m.receipt),
    });
    consumed += messages.length;
    return messages.length;
  });
  return { ...result, messages: consumed };
}

/** Plain sequential write + fdatasync of `batchBytes`, `batches` times. */
function diskYardstick(dir: string, batchBytes: number, batches: number): number {
  const fd = openSync(join(dir, 'yardstick'), 'w');
  const buffer = Buffer.alloc(batchBytes, 1);
  const began = performance.now();
  for (let i = 0; i < batches; i++) {
    writeSync(fd, buffer);
    fdatasyncSync(fd);
  }
  closeSync(fd);
  return batches / ((performance.now() - began) / 1000);
}

// --- the run -------------------------------------------------------------

async function startBroker(dataDir: string): Promise<ChildProcess> {
  const usher = new URL('../../bin/usher', import.meta.url).pathname;
  const child = spawn(process.execPath, [...usherNodeFlags(), usher, 'serve', '--data', dataDir, '--port', String(PORT), '--amqp-port', '-1'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 100; i++) {
    try {
      await expectOk('GET', '/healthz');
      return child;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  child.kill('SIGKILL');
  throw new Error('usher serve did not answer /healthz within 10 s');
}

function brokerCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function ms(histogram: RecordableHistogram, percentile: number): string {
  return (histogram.percentile(percentile) / 1e6).toFixed(1);
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'usher-bench-'));
  const broker = await startBroker(dataDir);
  const bodyBytes = Buffer.byteLength(ticketEvent(0));

  try {
    await expectOk('PUT', '/queues/bench-single', {});
    await expectOk('PUT', '/queues/bench-batch', {});
    const results: Result[] = [];
    const cpuBefore = brokerCpuSeconds(broker.pid!);
    results.push(await publishSingles('bench-single'));
    results.push(await publishBatches('bench-batch'));
    results.push(await consumeAndAck('bench-batch', results[1].messages));
    const brokerCpu = brokerCpuSeconds(broker.pid!) - cpuBefore;

    const seconds = results.reduce((sum, r) => sum + r.seconds, 0);
    const singlesLimit = diskYardstick(dataDir, bodyBytes + 100, 2000);
    const batchLimit = diskYardstick(dataDir, (bodyBytes + 100) * 100, 500) * 100;

    console.log(`\nUsher HTTP, durable (fdatasync) ticket events of ${bodyBytes} bytes, ` +
      `${CONCURRENCY} requests in flight\n`);
    console.log('| workload | messages | msg/s | p50 ms | p99 ms |');
    console.log('|---|---:|---:|---:|---:|');
    for (const r of results) {
      console.log(`| ${r.name} | ${r.messages} | ${Math.round(r.messages / r.seconds)} | ` +
        `${ms(r.latency, 50)} | ${ms(r.latency, 99)} |`);
    }
    console.log(`\nDisk yardstick, same run: sequential write + fdatasync of one message ` +
      `per sync ${Math.round(singlesLimit)} msg/s; of 100 per sync ${Math.round(batchLimit)} msg/s.`);
    console.log(`Publish of 1 per request reaches ${(results[0].messages / results[0].seconds / singlesLimit).toFixed(2)}x ` +
      'the one-per-sync yardstick (group commit shares syncs across requests).');
    console.log(`Broker CPU ${(brokerCpu / seconds * 100).toFixed(0)}% of one core over the run.`);
  } finally {
    broker.kill('SIGTERM');
    await new Promise((resolve) => broker.once('exit', resolve));
    rmSync(dataDir, { recursive: true, force: true });
    agent.destroy();
  }
}

await main();
