// Machine resources the metrics and alerts compare against: the disk the
// data folder lives on, and the memory the process may use.

import { statfs } from 'node:fs';
import { totalmem } from 'node:os';

import type { BrokerApi } from '../broker/types.js';

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
 * The memory the process may use: the broker's own budget when admission
 * control has one (`--memory-budget`), else the container's (cgroup) limit
 * when it has one, else the machine's memory.
 */
export function memoryBudgetBytes(broker?: BrokerApi): number {
  const configured = broker?.admissionStats?.()?.signals.memoryBudgetBytes;
  if (configured !== undefined && configured !== null && configured > 0) return configured;
  const constrained = process.constrainedMemory?.() ?? 0;
  return constrained > 0 && constrained < Number.MAX_SAFE_INTEGER ? constrained : totalmem();
}
