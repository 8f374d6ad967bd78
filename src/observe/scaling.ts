// The consumer-scaling hint: how many consumers a queue needs so that its
// backlog drains to nothing within the lag target while new messages keep
// arriving at the rate just seen.
//
//   needed = ceil((arrivals per s + ready / target s) * seconds per message)
//
// Seconds per message is the consumers' processing time, estimated as the
// mean publish-to-ack time minus the mean time in queue. Known weak: a
// message that was delayed or retried adds its delay to publish-to-ack
// but not to time in queue, so the estimate runs high on queues with
// delays or many retries; measuring lease-to-ack directly would fix it.

import type { Sample } from './sampler.js';
import { SampleWindow } from './window.js';

export const DEFAULT_LAG_TARGET_SECONDS = 60;
/** Arrival rate is measured over this much history. */
const ARRIVAL_WINDOW_SECONDS = 60;

/** Needed consumers per queue; queues that never saw an ack are left out. */
export function consumersNeeded(
  samples: readonly Sample[],
  targetSeconds: number,
): Map<string, number> {
  const needed = new Map<string, number>();
  if (samples.length === 0) return needed;
  const window = new SampleWindow(samples);

  for (const [queue, now] of Object.entries(window.latest.queues)) {
    const acked = now.publishToAck;
    const waited = now.timeInQueue;
    if (acked.count === 0 || waited.count === 0) continue;

    const processing = Math.max(
      0,
      acked.sumSeconds / acked.count - waited.sumSeconds / waited.count,
    );
    const arrivals = window.rate(ARRIVAL_WINDOW_SECONDS, (s) => s.queues[queue]?.published);
    const demand = arrivals + now.ready / targetSeconds;
    needed.set(queue, demand > 0 ? Math.max(1, Math.ceil(demand * processing)) : 0);
  }
  return needed;
}
