// What the dashboard's live feed (GET /events) carries: a chart point per
// sample (broker-wide rates and latency over the interval just passed)
// and the current state (health, connections, queues, alerts).

import type { BrokerApi, QueueInfo } from '../broker/types.js';
import type { ActiveAlert } from './alerts.js';
import { quantileOf } from './latency.js';
import { queueStatus, type QueueStatus } from './queue-status.js';
import type { HistogramSample, Sample } from './sampler.js';

export interface ChartPoint {
  /** Epoch seconds, as uPlot takes them. */
  t: number;
  publishRate: number;
  deliverRate: number;
  ackRate: number;
  /** p95 over the interval, all queues together; null with nothing acked. */
  p95PublishToAckMs: number | null;
  p95TimeInQueueMs: number | null;
}

export interface QueueRow extends QueueInfo {
  publishRate: number;
  ackRate: number;
  deadLetterQueue: boolean;
  status: QueueStatus;
}

export interface FeedState {
  at: number;
  health: Record<string, unknown>;
  connections: Record<string, number>;
  alerts: ActiveAlert[];
  queues: QueueRow[];
}

export function chartPoint(previous: Sample | undefined, sample: Sample): ChartPoint {
  const span = previous === undefined ? 0 : (sample.at - previous.at) / 1000;
  const rate = (read: (q: Sample['queues'][string]) => number) => {
    if (previous === undefined || span <= 0) return 0;
    let grown = 0;
    for (const [name, now] of Object.entries(sample.queues)) {
      const before = previous.queues[name];
      const then = before === undefined ? 0 : read(before);
      grown += read(now) >= then ? read(now) - then : read(now);
    }
    return grown / span;
  };
  const p95 = (read: (q: Sample['queues'][string]) => HistogramSample) => {
    const cumulative: number[] = [];
    let total = 0;
    for (const [name, now] of Object.entries(sample.queues)) {
      const before = previous?.queues[name];
      const reset = before === undefined || read(before).count > read(now).count;
      read(now).cumulative.forEach((count, i) => {
        cumulative[i] = (cumulative[i] ?? 0) + count - (reset ? 0 : read(before).cumulative[i]);
      });
      total += read(now).count - (reset ? 0 : read(before).count);
    }
    const seconds = quantileOf(0.95, cumulative, total);
    return Number.isNaN(seconds) ? null : seconds * 1000;
  };

  return {
    t: sample.at / 1000,
    publishRate: rate((q) => q.published),
    deliverRate: rate((q) => q.delivered),
    ackRate: rate((q) => q.acked),
    p95PublishToAckMs: p95((q) => q.publishToAck),
    p95TimeInQueueMs: p95((q) => q.timeInQueue),
  };
}

export function feedState(
  broker: BrokerApi,
  samples: readonly Sample[],
  alerts: ActiveAlert[],
): FeedState {
  const latest = samples.at(-1);
  const previous = samples.at(-2);
  const span =
    latest !== undefined && previous !== undefined ? (latest.at - previous.at) / 1000 : 0;
  const rateOf = (name: string, field: 'published' | 'acked') => {
    const now = latest?.queues[name]?.[field];
    const then = previous?.queues[name]?.[field];
    if (now === undefined || then === undefined || span <= 0 || now < then) return 0;
    return (now - then) / span;
  };

  return {
    at: latest?.at ?? Date.now(),
    health: latest?.health ?? {},
    connections: latest?.connections ?? {},
    alerts,
    queues: broker.listQueues().map((queue) => ({
      ...queue,
      publishRate: rateOf(queue.name, 'published'),
      ackRate: rateOf(queue.name, 'acked'),
      deadLetterQueue: queue.deadLetterSources.length > 0,
      status: queueStatus(queue, samples),
    })),
  };
}
