// What the observations cost on the message path, measured against the
// message path itself in the same run: an in-process broker (no fsync)
// publishes, receives and acks N messages, and the same number of
// latency observations (two per message: time in queue, publish to ack)
// and per-queue lookups are timed on their own.
//
//   npm run build && node dist/bench/observe-bench.js [messages]

import { performance } from 'node:perf_hooks';

import { Broker } from '../src/broker/broker.js';
import { LatencyHistogram } from '../src/observe/latency.js';
import { observationsOf } from '../src/observe/observations.js';
import { silentLogger, tempDir } from '../test/helpers.js';

const MESSAGES = Number(process.argv[2] ?? 50_000);
const BATCH = 100;

async function brokerPath(): Promise<number> {
  const dir = tempDir('usher-observe-bench-');
  const broker = await Broker.open({ dataDir: dir.path, logger: silentLogger, sync: false });
  try {
    await broker.createQueue('bench', {});
    const body = Buffer.alloc(464, 'x');
    const began = performance.now();
    for (let sent = 0; sent < MESSAGES; sent += BATCH) {
      await broker.publish('bench', Array.from({ length: BATCH }, () => ({ body })));
      const received = await broker.receive('bench', { max: BATCH, waitMs: 0 });
      await broker.ack('bench', received.map((m) => m.receipt));
    }
    return performance.now() - began;
  } finally {
    await broker.close();
    dir.remove();
  }
}

function observationPath(): number {
  const observed = observationsOf({});
  let sink = 0;
  const began = performance.now();
  for (let sent = 0; sent < MESSAGES; sent += BATCH) {
    // As the broker does: one lookup per receive and per ack call, one
    // observation per message on each.
    const waited = observed.queueLatency('bench').timeInQueue;
    for (let i = 0; i < BATCH; i++) waited.observeMs((i * 7) % 300);
    const acked: LatencyHistogram = observed.queueLatency('bench').publishToAck;
    for (let i = 0; i < BATCH; i++) acked.observeMs((i * 13) % 900);
    sink += acked.count;
  }
  if (sink < 0) console.log(sink);
  return performance.now() - began;
}

observationPath(); // warm up
const broker = await brokerPath();
const observations = observationPath();
console.log(`messages                     ${MESSAGES}`);
console.log(`broker publish+receive+ack   ${(broker / MESSAGES * 1e6).toFixed(0)} ns/message`);
console.log(`observations                 ${(observations / MESSAGES * 1e6).toFixed(0)} ns/message`);
console.log(`share of the message path    ${((observations / broker) * 100).toFixed(2)} %`);
