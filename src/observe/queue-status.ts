// A queue's status in one word, for dashboards and alerts that want "is
// this queue healthy" without combining several series themselves:
//
//   full     its waiting messages reach maxLength or maxBytes, so the
//            overflow policy acts on every publish;
//   stalled  messages are ready, yet nothing was delivered from it between
//            the broker's last two samples (no consumer, or all stuck);
//   idle     it holds no message at all;
//   active   anything else: messages come and go.
//
// The first that holds wins, in that order.

import type { QueueInfo } from '../broker/types.js';
import type { Sample } from './sampler.js';

export const QUEUE_STATUSES = ['active', 'idle', 'stalled', 'full'] as const;
export type QueueStatus = (typeof QUEUE_STATUSES)[number];

export function queueStatus(queue: QueueInfo, samples: readonly Sample[]): QueueStatus {
  const { stats, settings } = queue;
  const waiting = stats.ready + stats.delayed;
  const atLength = settings.maxLength !== null && waiting >= settings.maxLength;
  const atBytes = settings.maxBytes !== null && stats.bytes >= settings.maxBytes;
  if (atLength || atBytes) return 'full';

  if (stats.ready > 0 && deliveredNothing(queue.name, samples)) return 'stalled';
  if (stats.total === 0) return 'idle';
  return 'active';
}

/** True when the last two samples both know the queue and its deliveries did not move. */
function deliveredNothing(name: string, samples: readonly Sample[]): boolean {
  const before = samples.at(-2)?.queues[name];
  const latest = samples.at(-1)?.queues[name];
  if (before === undefined || latest === undefined) return false;
  return latest.delivered === before.delivered && latest.ready > 0 && before.ready > 0;
}
