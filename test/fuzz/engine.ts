// Runs one fuzz target: every corpus seed first, then mutations of them
// (mutate.ts), until a count or a deadline. A thrown error is a crash; an
// input that takes longer than hangMs is a hang (sync decoders cannot be
// interrupted, so it is measured, not cut off). Memory is sampled so a
// long run can show it stays flat.

import { Rng, mutate } from './mutate.js';
import type { Target } from './targets.js';

export interface FuzzOptions {
  seed: number;
  corpus: readonly Buffer[];
  /** Stop after this many inputs... */
  maxInputs?: number;
  /** ...or at this time (Date.now()), whichever comes first. */
  deadline?: number;
  hangMs?: number;
}

export interface FuzzFinding {
  input: Buffer;
  error: string;
}

export interface FuzzReport {
  target: string;
  tried: number;
  crashes: FuzzFinding[];
  hangs: FuzzFinding[];
  slowestMs: number;
  /** Heap used at the start and the highest seen after it, in bytes. */
  heapStart: number;
  heapMax: number;
  rssMax: number;
}

export async function fuzz(target: Target, options: FuzzOptions): Promise<FuzzReport> {
  const rng = new Rng(options.seed);
  const hangMs = options.hangMs ?? 1000;
  const maxInputs = options.maxInputs ?? Number.POSITIVE_INFINITY;
  const deadline = options.deadline ?? Number.POSITIVE_INFINITY;
  const report: FuzzReport = {
    target: target.name,
    tried: 0,
    crashes: [],
    hangs: [],
    slowestMs: 0,
    heapStart: process.memoryUsage().heapUsed,
    heapMax: 0,
    rssMax: 0,
  };
  const pool = [...options.corpus];

  while (report.tried < maxInputs && Date.now() < deadline) {
    const input =
      report.tried < options.corpus.length
        ? options.corpus[report.tried]
        : mutate(rng.pick(pool.length > 0 ? pool : [Buffer.alloc(0)]), rng, pool, target.maxLength);

    const started = performance.now();
    try {
      await target.run(input, rng);
    } catch (err) {
      const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      report.crashes.push({ input, error });
      // Keep a handful: one bug usually shows up many times.
      if (report.crashes.length >= 20) break;
    }
    const took = performance.now() - started;
    report.slowestMs = Math.max(report.slowestMs, took);
    if (took > hangMs) report.hangs.push({ input, error: `took ${Math.round(took)} ms` });
    report.tried += 1;

    if (report.tried % 500 === 0) {
      const memory = process.memoryUsage();
      report.heapMax = Math.max(report.heapMax, memory.heapUsed);
      report.rssMax = Math.max(report.rssMax, memory.rss);
      // Inputs that run long are worth mutating further.
      if (took > 5 && pool.length < 2000) pool.push(input);
    }
  }
  return report;
}
