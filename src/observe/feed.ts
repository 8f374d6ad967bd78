// What the dashboard's live feed (GET /events) carries: a chart point per
// sample (broker-wide rates and latency over the interval just passed)
// and the current state (health, connections, queues, alerts).

import type { BrokerApi, QueueInfo } from '../broker/types.js';
import type { ActiveAlert } from './alerts.js';
import { LATENCY_BUCKETS_SECONDS, quantileOf } from './latency.js';
import { queueStatus, type QueueStatus } from './queue-status.js';
import type { HistogramSample, Sample, TrafficSample } from './sampler.js';

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

/**
 * The chart point for the interval from `previous` to `sample`. Its
 * figures are broker-wide counts that only grow (the live queues' plus
 * those of queues deleted since the broker opened), so that traffic on a
 * queue deleted, or deleted and declared again, within the interval
 * still counts.
 */
export function chartPoint(previous: Sample | undefined, sample: Sample): ChartPoint {
  const span = previous === undefined ? 0 : (sample.at - previous.at) / 1000;
  const rate = (read: (traffic: TrafficSample) => number) => {
    if (previous === undefined || span <= 0) return 0;
    const grown = brokerWide(sample, read) - brokerWide(previous, read);
    return Math.max(0, grown) / span;
  };
  const p95 = (read: (traffic: TrafficSample) => HistogramSample) => {
    const now = brokerWideHistogram(sample, read);
    const then = previous === undefined ? undefined : brokerWideHistogram(previous, read);
    const cumulative = now.cumulative.map((count, i) => count - (then?.cumulative[i] ?? 0));
    const seconds = quantileOf(0.95, cumulative, now.count - (then?.count ?? 0));
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

function brokerWide(sample: Sample, read: (traffic: TrafficSample) => number): number {
  let sum = read(sample.deletedQueues);
  for (const queue of Object.values(sample.queues)) sum += read(queue);
  return sum;
}

function brokerWideHistogram(
  sample: Sample,
  read: (traffic: TrafficSample) => HistogramSample,
): HistogramSample {
  const sum: HistogramSample = {
    cumulative: LATENCY_BUCKETS_SECONDS.map(() => 0),
    count: 0,
    sumSeconds: 0,
  };
  for (const traffic of [sample.deletedQueues, ...Object.values(sample.queues)]) {
    const histogram = read(traffic);
    histogram.cumulative.forEach((count, i) => (sum.cumulative[i] += count));
    sum.count += histogram.count;
    sum.sumSeconds += histogram.sumSeconds;
  }
  return sum;
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
