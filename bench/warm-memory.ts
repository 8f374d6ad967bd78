// This machine is a virtual machine whose host backs guest memory on
// first use. A page the guest kernel hands out for the first time since
// boot costs a fault on the host, so the page cache grows several times
// more slowly into untouched memory than into memory used before: writing
// 3 GB with dd took 6.5 s of system time the first time after boot, then
// 1.7 s and 1.0 s (file deleted between runs). Any benchmark phase that
// grows the page cache past what earlier phases touched pays that toll,
// whichever broker or yardstick it is, so a later phase (the backlog's
// growth, the second broker) reads slower than an earlier one for a
// reason a long-running server never has.
//
// warmMemory() touches the free memory once, in a child process that
// fills buffers and exits: its pages go back to the guest's free list,
// already backed, and every phase after it pays the same.

import { spawnSync } from 'node:child_process';
import { freemem } from 'node:os';

const GiB = 1024 ** 3;
/** Left untouched, so the rest of the machine keeps room. */
const MARGIN_BYTES = 2 * GiB;
const CHUNK_BYTES = 256 * 1024 * 1024;

export interface Warmed {
  bytes: number;
  seconds: number;
  /** The child's system CPU seconds: high on a first pass after boot. */
  systemSeconds: number;
}

/** Touches `bytes` of memory (default: all free memory but 2 GiB) once. */
export function warmMemory(bytes = Math.max(0, freemem() - MARGIN_BYTES)): Warmed {
  const chunks = Math.floor(bytes / CHUNK_BYTES);
  const began = performance.now();
  // Buffer.alloc with a fill value writes every page; a zero fill may
  // come from fresh zero pages and touch nothing.
  const child = spawnSync(process.execPath, ['-e', `
    const held = [];
    for (let i = 0; i < ${chunks}; i++) held.push(Buffer.alloc(${CHUNK_BYTES}, 1));
    process.stdout.write(JSON.stringify(process.cpuUsage()));
  `], { encoding: 'utf8' });
  const seconds = (performance.now() - began) / 1000;
  if (child.status !== 0) {
    throw new Error(`warming memory failed: ${child.stderr || child.error?.message}`);
  }
  const usage = JSON.parse(child.stdout) as { system: number };
  return { bytes: chunks * CHUNK_BYTES, seconds, systemSeconds: usage.system / 1e6 };
}

/** One line for a bench's output. */
export function describeWarmed(warmed: Warmed): string {
  const gib = warmed.bytes / GiB;
  return `memory warmed first (bench/warm-memory.ts): ${gib.toFixed(1)} GiB touched once in ` +
    `${warmed.seconds.toFixed(1)} s, ${warmed.systemSeconds.toFixed(1)} s of it system time ` +
    `(${((warmed.systemSeconds * 1e6) / (warmed.bytes / 4096)).toFixed(2)} µs a 4 KiB page)`;
}
