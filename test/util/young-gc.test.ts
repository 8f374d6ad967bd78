import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { promisify } from 'node:util';

const PROBE = new URL('./young-gc-probe.js', import.meta.url).pathname;

interface Probe {
  scavenges: number;
  wakeups: number;
}

async function probe(mode: 'default' | 'main-thread'): Promise<Probe> {
  const { stdout } = await promisify(execFile)(process.execPath, [PROBE, mode], {
    timeout: 60_000,
  });
  return JSON.parse(stdout) as Probe;
}

// The broker's scavenges must not wake V8's helper threads: on a busy
// machine each woken helper waits for a core while the main thread waits
// for it (young-gc.ts). Linux's /proc counts each thread's wakeups.
test('after scavengeOnMainThread no scavenge wakes another thread', async (t) => {
  if (!existsSync('/proc/self/task')) {
    t.skip('needs /proc/self/task (Linux) to count wakeups per thread');
    return;
  }
  const parallel = await probe('default');
  assert.ok(parallel.scavenges >= 10, `only ${parallel.scavenges} scavenges in the probe`);
  // A V8 that scavenges on one thread anyway (one core) cannot show it.
  if (parallel.wakeups < 2 * parallel.scavenges) {
    t.skip(`V8 scavenges on one thread here already (${parallel.wakeups} wakeups ` +
      `of other threads in ${parallel.scavenges} scavenges)`);
    return;
  }

  const alone = await probe('main-thread');
  assert.ok(alone.scavenges >= 10, `only ${alone.scavenges} scavenges in the probe`);
  assert.ok(alone.wakeups < alone.scavenges / 2,
    `${alone.wakeups} wakeups of other threads in ${alone.scavenges} scavenges ` +
    `(by default: ${parallel.wakeups} in ${parallel.scavenges})`);
});
