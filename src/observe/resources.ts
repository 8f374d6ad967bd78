// Machine resources the metrics and alerts compare against: the disk the
// data folder lives on, and the memory the process may use.

import { statfs } from 'node:fs';
import { totalmem } from 'node:os';

/** Total bytes of the disk holding `dir`. */
export function diskSizeOf(dir: string): Promise<number> {
  return new Promise((resolve, reject) => {
    statfs(dir, (err, stats) => (err ? reject(err) : resolve(stats.blocks * stats.bsize)));
  });
}

/** What the process uses now: its resident set, buffers (bodies) included. */
export function memoryUsedBytes(): number {
  return process.memoryUsage.rss();
}

/**
 * The memory the process may use: the container's (cgroup) limit when it
 * has one, else the machine's memory. Usher has no budget setting of its
 * own yet; admission control (#6) may bring one, and then this should
 * answer it.
 */
export function memoryBudgetBytes(): number {
  const constrained = process.constrainedMemory?.() ?? 0;
  return constrained > 0 && constrained < Number.MAX_SAFE_INTEGER ? constrained : totalmem();
}
