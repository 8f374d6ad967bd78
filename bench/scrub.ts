// What the scrub after a start from a checkpoint costs (src/storage/scrub.ts):
// a log of N ticket events (460-byte bodies, as bench/storage.ts) is
// written and closed cleanly, so its checkpoint covers all of it; then it
// is reopened `--rounds` times, alternately with and without the scrub,
// measuring open time, the scrub's time and rate, and the event loop's
// delay (monitorEventLoopDelay, 1 ms resolution) over the same stretch
// of time in both. The segments were just written: they are read from
// the page cache, as after a restart of the process but not of the host.
//
// --damage flips a bit early in the first (64 MiB) segment, so that each
// scrub also searches for the next whole frame after a bad one.
//
//   npm run build && node dist/bench/scrub.js [--messages 1000000]
//     [--rounds 3] [--damage] [--dir DIR]

import {
  mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import { LogStore } from '../src/storage/log-store.js';
import type { PublishedRecord } from '../src/storage/records.js';
import { benchArgs } from './bench-args.js';

const args = benchArgs('node dist/bench/scrub.js', {
  messages: { type: 'string', default: '1000000' },
  rounds: { type: 'string', default: '3' },
  dir: { type: 'string' },
  damage: { type: 'boolean', default: false },
});
const MESSAGES = Number(args.messages);
const ROUNDS = Number(args.rounds);
const BATCH = 100;
const BODY = Buffer.alloc(460, 'x');
const silent = { info() {}, warn() {}, error() {} };
const root = mkdtempSync(join(args.dir ?? tmpdir(), 'usher-bench-scrub-'));
const dir = join(root, 'log');

function open(scrubAfterOpen: boolean): Promise<LogStore> {
  return LogStore.open({
    dir,
    sync: false,
    logger: silent,
    snapshotMessage: () => undefined,
    checkpoints: {},
    copyReplayedBodies: false,
    scrubAfterOpen,
  }, () => {});
}

function ticket(seq: number): PublishedRecord {
  return {
    type: 'published', seq, queue: 'tickets', id: `ticket-${seq}`, priority: 0, group: '',
    headers: { 'content-type': 'application/json' }, body: BODY,
    publishedAt: 1_730_800_000_000 + seq, availableAt: 1_730_800_000_000 + seq,
    expiresAt: null, failures: 0,
  };
}

async function fill(): Promise<void> {
  const store = await open(false);
  await store.append([{ type: 'queue-declared', name: 'tickets', settings: {} }]);
  const pending: Promise<void>[] = [];
  for (let seq = 1; seq <= MESSAGES; seq += BATCH) {
    const records: PublishedRecord[] = [];
    for (let i = seq; i < Math.min(seq + BATCH, MESSAGES + 1); i++) records.push(ticket(i));
    pending.push(store.append(records));
    if (pending.length >= 32) await pending.shift();
  }
  await Promise.all(pending);
  await store.close();
}

interface Round {
  scrub: boolean;
  openMs: number;
  scrubMs: number;
  scrubbedBytes: number;
  corruptRegions: number;
  delayP50: number;
  delayP99: number;
  delayMax: number;
}

// With the scrub: until it ends. Without: for `windowMs`, as long as the
// last scrub took.
async function round(scrub: boolean, windowMs: number): Promise<Round> {
  const began = performance.now();
  const store = await open(scrub);
  const opened = performance.now();
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  if (scrub) await store.whenScrubbed();
  else await sleep(windowMs);
  const ended = performance.now();
  delay.disable();
  const stats = store.stats();
  await store.close();
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  return {
    scrub,
    openMs: Math.round(opened - began),
    scrubMs: Math.round(ended - opened),
    scrubbedBytes: stats.scrubbedBytes,
    corruptRegions: stats.corruptRegions,
    delayP50: ms(delay.percentile(50)),
    delayP99: ms(delay.percentile(99)),
    delayMax: ms(delay.max),
  };
}

try {
  const filling = performance.now();
  await fill();
  const logBytes = readdirSync(dir)
    .filter((name) => name.endsWith('.log'))
    .reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
  console.log(
    `log of ${MESSAGES} messages: ${(logBytes / 2 ** 20).toFixed(0)} MiB, ` +
      `written in ${Math.round(performance.now() - filling)} ms`,
  );

  if (args.damage) {
    const first = join(dir, readdirSync(dir).filter((name) => name.endsWith('.log')).sort()[0]);
    const bytes = readFileSync(first);
    bytes[5000] ^= 1;
    writeFileSync(first, bytes);
  }

  let windowMs = 1000;
  for (let r = 0; r < ROUNDS; r++) {
    // The order alternates, so that neither side always follows the other.
    const order = r % 2 === 0 ? [true, false] : [false, true];
    for (const scrub of order) {
      const result = await round(scrub, windowMs);
      if (scrub) windowMs = result.scrubMs;
      const rate = result.scrubbedBytes / 2 ** 20 / (result.scrubMs / 1000);
      console.log(JSON.stringify({
        round: r,
        ...result,
        scrubMiBps: scrub ? Math.round(rate) : null,
      }));
    }
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
