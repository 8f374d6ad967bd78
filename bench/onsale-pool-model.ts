// A model of the on-sale demo's worker pool (src/demo/ticketing/
// onsale-workers.ts) with no broker, no network and no clock: how long a
// payment waits for a free worker (the bench's `buffered` segment) when
// the pool is at half its capacity and when it is always busy, as in the
// spike. Workers take the oldest payment first, else low-priority work,
// one message at a time and without preemption; each message takes
// 0.5-1.5x the mean that gives the pool its capacity. What it leaves out:
// fetch round trips, timer lag and every stall of a real machine.
//
//   node dist/bench/onsale-pool-model.js [--capacity 400] [--workers 4]
//     [--tick-ms 10] [--seconds 200]


import { chance } from '../src/demo/ticketing/random.js';
import { quantile } from '../src/demo/ticketing/onsale-timing.js';
import { benchArgs } from './bench-args.js';

const args = benchArgs('node dist/bench/onsale-pool-model.js', {
  capacity: { type: 'string', default: '400' },
  workers: { type: 'string', default: '4' },
  'tick-ms': { type: 'string', default: '10' },
  seconds: { type: 'string', default: '200' },
});
const CAPACITY = Number(args.capacity);
const WORKERS = Number(args.workers);
const TICK_MS = Number(args['tick-ms']);
const SECONDS = Number(args.seconds);
/** The demo's shares: payments 10%, notifications and recommendations
 * (low priority here, as both rank below payments) the rest. */
const PAYMENT_SHARE = 0.1;

for (const [phase, rate, lowBacklog] of [
  ['normal (half the capacity)', CAPACITY / 2, false],
  ['spike (5x, low-priority backlog never empty)', CAPACITY * 5, true],
] as const) {
  const waits = paymentWaits(rate, lowBacklog);
  const ms = (q: number) => quantile(waits, q).toFixed(1);
  console.log(`${phase}: ${waits.length} payments, wait for a free worker ms ` +
    `p50 ${ms(0.5)}, p90 ${ms(0.9)}, p99 ${ms(0.99)}, max ${ms(1)}`);
}

/** Each payment's wait from arrival to a worker starting on it. */
function paymentWaits(rate: number, lowBacklog: boolean): number[] {
  // Arrivals as the demo's publisher makes them: what is owed, every tick.
  const payments: number[] = [];
  const lows: number[] = [];
  let owedPayments = 0;
  let owedLows = 0;
  for (let at = 0; at < SECONDS * 1000; at += TICK_MS) {
    owedPayments += (rate * PAYMENT_SHARE * TICK_MS) / 1000;
    owedLows += (rate * (1 - PAYMENT_SHARE) * TICK_MS) / 1000;
    for (; owedPayments >= 1; owedPayments--) payments.push(at);
    for (; owedLows >= 1; owedLows--) lows.push(lowBacklog ? 0 : at);
  }

  const meanWorkMs = (WORKERS * 1000) / CAPACITY;
  const freeAt = new Array<number>(WORKERS).fill(0);
  const waits: number[] = [];
  let nextPayment = 0;
  let nextLow = 0;
  for (let draw = 0; nextPayment < payments.length; draw++) {
    // The worker free first takes the next message, as soon as one is
    // there: the oldest payment if one has arrived by then.
    const worker = freeAt.indexOf(Math.min(...freeAt));
    const payment = payments[nextPayment];
    const low = nextLow < lows.length ? lows[nextLow] : Number.POSITIVE_INFINITY;
    const startsAt = Math.max(freeAt[worker], Math.min(payment, low));
    if (payment <= startsAt) {
      waits.push(startsAt - payment);
      nextPayment++;
    } else {
      nextLow++;
    }
    freeAt[worker] = startsAt + meanWorkMs * (0.5 + chance(7, draw));
  }
  return waits;
}
