// The /metrics series that come from src/observe rather than straight from
// the queue stats: connections, security, refusals, deaths by reason,
// queue status, latency histograms, memory, replication and the
// consumer-scaling hint.
// Like the rest of /metrics, every value is read at scrape time.
// Names and meanings: docs/metrics.md.

import { Counter, Gauge, type Registry } from 'prom-client';

import type { BrokerApi, QueueInfo } from '../broker/types.js';
import type { LatencyHistogram } from './latency.js';
import { observationsOf, type Observations, type QueueLatency } from './observations.js';
import { memoryBudgetBytes, memoryUsedBytes } from './resources.js';
import { QUEUE_STATUSES, queueStatus } from './queue-status.js';
import { consumersNeeded } from './scaling.js';

/**
 * Registers the observed metrics on `registry`. The answer is called at
 * each scrape, to register what other parts of Usher added since
 * (addMetrics in observations.ts).
 */
export function registerObservedMetrics(
  registry: Registry,
  broker: BrokerApi,
  queues: () => QueueInfo[],
): () => void {
  const observed = observationsOf(broker);

  perKey(registry, 'gauge', 'usher_connections',
    'Open client connections', 'protocol', () => observed.connections);
  perKey(registry, 'counter', 'usher_auth_failures_total',
    'Failed authentication attempts', 'protocol', () => observed.authFailures);
  perKey(registry, 'counter', 'usher_unauthorized_total',
    'Requests refused for lack of permission', 'protocol', () => observed.unauthorized);
  perKey(registry, 'counter', 'usher_publishes_refused_total',
    'Publishes refused, by error code', 'reason', () => observed.refusedPublishes);

  registerQueueMetrics(registry, observed, queues);
  registerHistogram(registry, 'usher_publish_to_ack_seconds',
    'Time from publish to the ack that settled the message', observed, 'publishToAck');
  registerHistogram(registry, 'usher_time_in_queue_seconds',
    'Time a message waited, deliverable, before a delivery', observed, 'timeInQueue');

  single(registry, 'gauge', 'usher_memory_used_bytes',
    'Resident memory of the broker process', memoryUsedBytes);
  single(registry, 'gauge', 'usher_memory_budget_bytes',
    'Memory the broker may use: --memory-budget, else the cgroup limit, else the machine memory',
    () => memoryBudgetBytes(broker));
  // Zero until Usher replicates queues (clustering); present so that
  // dashboards and alerts need no change then.
  single(registry, 'gauge', 'usher_under_replicated_queues',
    'Queues with fewer in-sync replicas than configured', () => 0);
  single(registry, 'counter', 'usher_leader_elections_total',
    'Leader elections held', () => 0);

  let installed = 0;
  const installNew = () => {
    for (; installed < observed.installers.length; installed++) {
      observed.installers[installed](registry);
    }
  };
  installNew();
  return installNew;
}

function registerQueueMetrics(
  registry: Registry,
  observed: Observations,
  queues: () => QueueInfo[],
): void {
  new Counter({
    name: 'usher_delivery_failures_total',
    help: 'Deliveries that ended without an ack: nacks and expired leases',
    labelNames: ['queue'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { name, stats } of queues()) {
        this.inc({ queue: name }, stats.nacked + stats.leaseExpired);
      }
    },
  });
  new Gauge({
    name: 'usher_dead_letter_queue_messages',
    help: 'Messages in a dead-letter queue (a queue another names as such)',
    labelNames: ['queue'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { name, stats, deadLetterSources } of queues()) {
        if (deadLetterSources.length > 0) this.set({ queue: name }, stats.total);
      }
    },
  });
  new Counter({
    name: 'usher_message_deaths_total',
    help: 'Messages that died in a queue (dead-lettered or dropped), by reason',
    labelNames: ['queue', 'reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [queue, reasons] of observed.deaths) {
        for (const [reason, count] of reasons) this.inc({ queue, reason }, count);
      }
    },
  });
  new Gauge({
    name: 'usher_queue_consumers_needed',
    help: 'Consumers needed to bring the backlog under the lag target',
    labelNames: ['queue'],
    registers: [registry],
    collect() {
      this.reset();
      const samples = observed.sampler?.samples ?? [];
      for (const [queue, needed] of consumersNeeded(samples, observed.lagTargetSeconds)) {
        this.set({ queue }, needed);
      }
    },
  });
  new Gauge({
    name: 'usher_queue_status',
    help:
      'A queue\'s status: 1 on the label that holds (active, idle, stalled, full), 0 on the others',
    labelNames: ['queue', 'status'],
    registers: [registry],
    collect() {
      this.reset();
      const samples = observed.sampler?.samples ?? [];
      for (const queue of queues()) {
        const current = queueStatus(queue, samples);
        for (const status of QUEUE_STATUSES) {
          this.set({ queue: queue.name, status }, status === current ? 1 : 0);
        }
      }
    },
  });
  new Gauge({
    name: 'usher_queue_lag_target_seconds',
    help: 'The lag target usher_queue_consumers_needed aims at',
    registers: [registry],
    collect() {
      this.set(observed.lagTargetSeconds);
    },
  });
}

/** A histogram per queue exported from the broker's own LatencyHistograms. */
function registerHistogram(
  registry: Registry,
  name: string,
  help: string,
  observed: Observations,
  which: keyof QueueLatency,
): void {
  registerReadHistogram(registry, name, help, () => [...observed.latency].flatMap(
    ([queue, latency]) => histogramValues(name, { queue }, latency[which])));
}

/**
 * A histogram whose samples (histogramValues) are read at scrape time.
 * prom-client's Histogram can only be observed into, so this registers
 * an object of the shape its Registry formats (name, help, type, get).
 */
export function registerReadHistogram(
  registry: Registry,
  name: string,
  help: string,
  values: () => ReturnType<typeof histogramValues>,
): void {
  registry.registerMetric({
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get: async () => ({ name, help, type: 'histogram', aggregator: 'sum', values: values() }),
  } as unknown as Parameters<Registry['registerMetric']>[0]);
}

/** A histogram's samples as prom-client's Registry formats them. */
export function histogramValues(name: string, labels: Record<string, string>,
  histogram: LatencyHistogram) {
  const cumulative = histogram.cumulative();
  const buckets = histogram.bounds.map((le, i) => ({
    metricName: `${name}_bucket`,
    labels: { ...labels, le },
    value: cumulative[i],
  }));
  return [
    ...buckets,
    { metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: histogram.count },
    { metricName: `${name}_sum`, labels, value: histogram.sumSeconds },
    { metricName: `${name}_count`, labels, value: histogram.count },
  ];
}

function perKey(
  registry: Registry,
  kind: 'gauge' | 'counter',
  name: string,
  help: string,
  label: string,
  counts: () => Map<string, number>,
): void {
  const Metric = kind === 'gauge' ? Gauge : Counter;
  new Metric({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, value] of counts()) {
        if (this instanceof Gauge) this.set({ [label]: key }, value);
        else this.inc({ [label]: key }, value);
      }
    },
  });
}

function single(
  registry: Registry,
  kind: 'gauge' | 'counter',
  name: string,
  help: string,
  value: () => number,
): void {
  const Metric = kind === 'gauge' ? Gauge : Counter;
  new Metric({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      if (this instanceof Gauge) this.set(value());
      else if (value() > 0) this.inc(value());
    },
  });
}
