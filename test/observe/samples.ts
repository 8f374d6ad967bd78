// Synthetic samples for the alert, scaling and feed tests: a healthy,
// idle broker, changed field by field.

import { LATENCY_BUCKETS_SECONDS } from '../../src/observe/latency.js';
import type { HistogramSample, QueueSample, Sample } from '../../src/observe/sampler.js';

export function histogram(secondsEach: number[] = []): HistogramSample {
  return {
    cumulative: LATENCY_BUCKETS_SECONDS.map(
      (bound) => secondsEach.filter((s) => s <= bound).length,
    ),
    count: secondsEach.length,
    sumSeconds: secondsEach.reduce((a, b) => a + b, 0),
  };
}

export function queueSample(changes: Partial<QueueSample> = {}): QueueSample {
  return {
    ready: 0,
    inFlight: 0,
    delayed: 0,
    total: 0,
    bytes: 0,
    oldestReadyAgeSeconds: 0,
    deadLetterQueue: false,
    published: 0,
    delivered: 0,
    acked: 0,
    nacked: 0,
    failures: 0,
    deadLettered: 0,
    expired: 0,
    publishToAck: histogram(),
    timeInQueue: histogram(),
    ...changes,
  };
}

/** A sample `seconds` after time 0. */
export function sampleAt(seconds: number, changes: Partial<Sample> = {}): Sample {
  return {
    at: 1_700_000_000_000 + seconds * 1000,
    up: 1,
    health: { status: 'ok' },
    connections: { http: 1, amqp: 0 },
    authFailures: { http: 0, amqp: 0 },
    unauthorized: { http: 0, amqp: 0 },
    memoryUsedBytes: 100,
    memoryBudgetBytes: 1000,
    diskFreeBytes: 900,
    diskSizeBytes: 1000,
    corruptRegions: 0,
    underReplicatedQueues: 0,
    leaderElections: 0,
    queues: {},
    deletedQueues: {
      published: 0,
      delivered: 0,
      acked: 0,
      publishToAck: histogram(),
      timeInQueue: histogram(),
    },
    ...changes,
  };
}
