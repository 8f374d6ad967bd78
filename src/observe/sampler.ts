// Samples of the broker's figures taken every few seconds and kept for ten
// minutes: the memory the broker's own alerts (rates over 5 minutes,
// conditions held for 5 minutes), the dashboard's charts and the
// consumer-scaling hint work from. A sample is plain numbers copied from
// the broker and its observations, so taking one costs a walk over the
// queues and nothing on the message path.

import type { BrokerApi } from '../broker/types.js';
import { LatencyHistogram } from './latency.js';
import { observationsOf, type Observations } from './observations.js';
import { memoryBudgetBytes, memoryUsedBytes } from './resources.js';

export interface HistogramSample {
  /** Cumulative count per bucket bound (LATENCY_BUCKETS_SECONDS). */
  cumulative: number[];
  count: number;
  sumSeconds: number;
}

/** What broker-wide rates and latency add up over the queues. */
export interface TrafficSample {
  published: number;
  delivered: number;
  acked: number;
  publishToAck: HistogramSample;
  timeInQueue: HistogramSample;
}

export interface QueueSample extends TrafficSample {
  ready: number;
  inFlight: number;
  delayed: number;
  total: number;
  bytes: number;
  oldestReadyAgeSeconds: number;
  /** Named as another queue's dead-letter queue. */
  deadLetterQueue: boolean;
  nacked: number;
  /** Deliveries that ended without an ack: nacks and expired leases. */
  failures: number;
  deadLettered: number;
  expired: number;
}

export interface Sample {
  /** Epoch ms. */
  at: number;
  up: number;
  /** The broker's health answer, whatever fields it has (admission...). */
  health: Record<string, unknown>;
  connections: Record<string, number>;
  authFailures: Record<string, number>;
  unauthorized: Record<string, number>;
  memoryUsedBytes: number;
  memoryBudgetBytes: number;
  diskFreeBytes: number;
  diskSizeBytes: number;
  /** Damaged stretches of the log found since the start (replay and scrubs). */
  corruptRegions: number;
  /** Zero until Usher replicates (clustering); see docs/metrics.md. */
  underReplicatedQueues: number;
  leaderElections: number;
  queues: Record<string, QueueSample>;
  /** The traffic of queues deleted since the broker opened (Observations.deletedQueues). */
  deletedQueues: TrafficSample;
}

export interface SamplerOptions {
  intervalMs: number;
  /** How much history to keep. */
  keepMs: number;
  clock?: () => number;
}

export const DEFAULT_SAMPLE_INTERVAL_MS = 5000;
export const DEFAULT_SAMPLE_KEEP_MS = 10 * 60_000;

export class Sampler {
  readonly samples: Sample[] = [];
  private readonly listeners = new Set<(sample: Sample) => void>();
  private timer: NodeJS.Timeout | null = null;
  private readonly clock: () => number;

  constructor(
    private readonly broker: BrokerApi,
    private readonly options: SamplerOptions,
  ) {
    this.clock = options.clock ?? Date.now;
  }

  start(): void {
    this.sampleNow();
    this.timer = setInterval(() => this.sampleNow(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.listeners.clear();
  }

  /** Calls `listener` after every sample; the answer unsubscribes. */
  onSample(listener: (sample: Sample) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  latest(): Sample | undefined {
    return this.samples.at(-1);
  }

  /** Takes a sample now (the timer does; tests call it directly). */
  sampleNow(): Sample {
    const sample = takeSample(
      this.broker,
      observationsOf(this.broker),
      this.clock(),
      this.latest(),
    );
    this.samples.push(sample);
    const horizon = sample.at - this.options.keepMs;
    while (this.samples.length > 1 && this.samples[0].at < horizon) this.samples.shift();
    for (const listener of this.listeners) listener(sample);
    return sample;
  }
}

/**
 * The figures as of `at`. A latency histogram that did not change since
 * `previous` is shared with it rather than copied: ten minutes of samples
 * of many idle queues would otherwise hold thousands of equal arrays.
 */
export function takeSample(
  broker: BrokerApi,
  observed: Observations,
  at: number,
  previous?: Sample,
): Sample {
  const health = broker.health();
  const queues: Record<string, QueueSample> = {};

  for (const queue of broker.listQueues()) {
    const { stats } = queue;
    const latency = observed.latency.get(queue.name);
    const before = previous?.queues[queue.name];
    queues[queue.name] = {
      ready: stats.ready,
      inFlight: stats.inFlight,
      delayed: stats.delayed,
      total: stats.total,
      bytes: stats.bytes,
      oldestReadyAgeSeconds: stats.oldestReadyAgeMs / 1000,
      deadLetterQueue: queue.deadLetterSources.length > 0,
      published: stats.published,
      delivered: stats.delivered,
      acked: stats.acked,
      nacked: stats.nacked,
      failures: stats.nacked + stats.leaseExpired,
      deadLettered: stats.deadLettered,
      expired: stats.expired,
      publishToAck: histogramSample(latency?.publishToAck, before?.publishToAck),
      timeInQueue: histogramSample(latency?.timeInQueue, before?.timeInQueue),
    };
  }

  return {
    at,
    up: health.status === 'ok' ? 1 : 0,
    health: health as unknown as Record<string, unknown>,
    connections: Object.fromEntries(observed.connections),
    authFailures: Object.fromEntries(observed.authFailures),
    unauthorized: Object.fromEntries(observed.unauthorized),
    memoryUsedBytes: memoryUsedBytes(),
    memoryBudgetBytes: memoryBudgetBytes(broker),
    diskFreeBytes: health.store.freeDiskBytes ?? -1,
    diskSizeBytes: health.store.diskSizeBytes ?? -1,
    corruptRegions: health.store.corruptRegions,
    underReplicatedQueues: 0,
    leaderElections: 0,
    queues,
    deletedQueues: deletedTraffic(observed, previous?.deletedQueues),
  };
}

function deletedTraffic(
  observed: Observations,
  before: TrafficSample | undefined,
): TrafficSample {
  const { published, delivered, acked, publishToAck, timeInQueue } = observed.deletedQueues;
  return {
    published,
    delivered,
    acked,
    publishToAck: histogramSample(publishToAck, before?.publishToAck),
    timeInQueue: histogramSample(timeInQueue, before?.timeInQueue),
  };
}

function histogramSample(
  histogram: LatencyHistogram | undefined,
  before: HistogramSample | undefined,
): HistogramSample {
  const source = histogram ?? EMPTY;
  // Observations only add; the same count and sum mean nothing was added
  // (a queue deleted and declared again starts from an empty histogram).
  if (
    before !== undefined &&
    before.count === source.count &&
    before.sumSeconds === source.sumSeconds
  ) {
    return before;
  }
  return {
    cumulative: source.cumulative(),
    count: source.count,
    sumSeconds: source.sumSeconds,
  };
}

const EMPTY = new LatencyHistogram();
