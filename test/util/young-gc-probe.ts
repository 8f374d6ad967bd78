// Child process of young-gc.test.ts: churns young objects (a tenth of them
// kept a while, so each scavenge has survivors to copy) and prints how
// many scavenges ran and how often V8's other threads woke meanwhile.
// With "main-thread" it first calls scavengeOnMainThread().

import { readFileSync, readdirSync } from 'node:fs';
import { PerformanceObserver, constants } from 'node:perf_hooks';

import { scavengeOnMainThread } from '../../src/util/young-gc.js';

if (process.argv[2] === 'main-thread') scavengeOnMainThread();

let scavenges = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = (entry as { detail?: { kind?: number } }).detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges++;
  }
}).observe({ entryTypes: ['gc'] });

const kept: object[] = new Array<object>(50_000);
let made = 0;
function churn(rounds: number): void {
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < 20_000; i++) {
      const object = { n: made, text: `object ${made}` };
      if (i % 10 === 0) kept[made % kept.length] = object;
      made++;
    }
  }
}

/** Voluntary context switches of every thread but the main one. */
function otherThreadWakeups(): number {
  let total = 0;
  for (const thread of readdirSync('/proc/self/task')) {
    if (Number(thread) === process.pid) continue;
    const status = readFileSync(`/proc/self/task/${thread}/status`, 'utf8');
    total += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  }
  return total;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

// Warm up first: compiler jobs also run on those threads.
churn(100);
await settle();
const scavengesBefore = scavenges;
const wakeupsBefore = otherThreadWakeups();
churn(300);
await settle();
console.log(JSON.stringify({
  scavenges: scavenges - scavengesBefore,
  wakeups: otherThreadWakeups() - wakeupsBefore,
}));
