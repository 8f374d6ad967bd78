// How long declaring many bindings takes (issue #4): one amqplib channel
// binds one durable queue to one durable topic exchange N times with N
// different keys, each bind waiting for its bind-ok, which Usher sends
// only once the binding is on disk. Usher (`usher serve`, fresh data
// folder) and, with --rabbitmq, a private RabbitMQ node in the same run.
//
//   npm run build && node dist/bench/topology-binds.js [--binds 10000] [--rabbitmq]

import { loadavg } from 'node:os';

import amqp from 'amqplib';

import { type RunningBroker, startRabbit, startUsher } from './amqp/brokers.js';
import { benchArgs } from './bench-args.js';

const values = benchArgs('node dist/bench/topology-binds.js', {
  binds: { type: 'string', default: '10000' },
  rabbitmq: { type: 'boolean', default: false },
});
const binds = Number(values.binds);
if (!Number.isInteger(binds) || binds < 1 || binds > 1_000_000) {
  throw new Error(`--binds ${values.binds}: give an integer from 1 to 1000000`);
}

/** Seconds for `binds` awaited binds, then for unbinding them all. */
async function measure(broker: RunningBroker): Promise<{ bind: number; unbind: number }> {
  const connection = await amqp.connect(broker.url);
  try {
    const channel = await connection.createChannel();
    await channel.assertExchange('bench.binds', 'topic', { durable: true });
    await channel.assertQueue('bench.binds', { durable: true });
    const started = performance.now();
    for (let i = 0; i < binds; i++) {
      await channel.bindQueue('bench.binds', 'bench.binds', `key.${i}.#`);
    }
    const bound = performance.now();
    for (let i = 0; i < binds; i++) {
      await channel.unbindQueue('bench.binds', 'bench.binds', `key.${i}.#`);
    }
    const unbound = performance.now();
    return { bind: (bound - started) / 1000, unbind: (unbound - bound) / 1000 };
  } finally {
    await connection.close();
  }
}

async function run(name: string, start: () => Promise<RunningBroker>): Promise<number> {
  const broker = await start();
  try {
    const { bind, unbind } = await measure(broker);
    console.log(`${name.padEnd(8)} ${binds} binds ${bind.toFixed(2)} s ` +
      `(${Math.round(binds / bind)}/s), unbinds ${unbind.toFixed(2)} s ` +
      `(${Math.round(binds / unbind)}/s)`);
    return bind;
  } finally {
    await broker.stop();
  }
}

console.log(`load average at start: ${loadavg().map((n) => n.toFixed(2)).join(' ')}`);
const usher = await run('usher', () => startUsher());
if (values.rabbitmq) {
  const rabbit = await run('rabbitmq', startRabbit);
  console.log(`usher/rabbitmq bind time ratio: ${(usher / rabbit).toFixed(2)}`);
}
console.log(`load average at end: ${loadavg().map((n) => n.toFixed(2)).join(' ')}`);
