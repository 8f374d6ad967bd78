// Usher's alerts, defined once. Each rule carries its threshold, its
// PromQL expression for Prometheus (deploy/prometheus/usher-alerts.yml is
// generated from this list by renderAlertRulesYaml) and the same
// condition measured over the broker's own samples, so that GET /alerts
// and the dashboard warn a single-node user without Prometheus.
// Thresholds are the mission's monitoring table.

import { quantileOf } from './latency.js';
import type { QueueSample, Sample } from './sampler.js';
import type { SampleWindow } from './window.js';

export interface Measurement {
  labels: Record<string, string>;
  value: number;
}

export interface AlertRule {
  name: string;
  severity: 'critical' | 'warning';
  /** Fires when the measured value is `op` the threshold. */
  op: '>' | '==';
  threshold: number;
  /** The condition must hold this long before the alert fires; 0 = at once. */
  forSeconds: number;
  /** Prometheus' expression, the threshold written in. */
  expr: string;
  /**
   * One line; {{ $labels.x }}, {{ $value }}, {{ printf "%.2f" $value }} and
   * {{ $value | humanizePercentage }} are filled in (the evaluator knows
   * only these four forms).
   */
  summary: string;
  /** The values the expression's left side has now, one per label set. */
  measure(window: SampleWindow): Measurement[];
}

const FIVE_MINUTES = 300;
const ONE_MINUTE = 60;

export const ALERT_RULES: readonly AlertRule[] = [
  {
    name: 'UsherDown',
    severity: 'critical',
    op: '==',
    threshold: 0,
    forSeconds: ONE_MINUTE,
    // Prometheus sees a broker that does not answer (up == 0); the broker
    // itself can only see that it is degraded (usher_up == 0).
    expr: 'up{job="usher"} == 0 or usher_up == 0',
    summary: 'Usher is down or degraded',
    measure: (w) => [{ labels: {}, value: w.latest.up }],
  },
  {
    name: 'UsherNoConnections',
    severity: 'warning',
    op: '==',
    threshold: 0,
    forSeconds: FIVE_MINUTES,
    expr: 'sum(usher_connections) == 0',
    // Shown while pending too: no "for 5 minutes" here (the rule's `for`).
    summary: 'No client is connected to Usher',
    measure: (w) => [{ labels: {}, value: sum(Object.values(w.latest.connections)) }],
  },
  {
    name: 'UsherConsumerLag',
    severity: 'warning',
    op: '>',
    threshold: 1000,
    forSeconds: FIVE_MINUTES,
    expr:
      'usher_queue_ready_messages > 1000' +
      ' unless on (queue) usher_dead_letter_queue_messages',
    summary: 'Queue {{ $labels.queue }} has {{ $value }} messages waiting for consumers',
    measure: (w) => perWorkQueue(w.latest, (q) => q.ready),
  },
  {
    name: 'UsherLatencyHigh',
    severity: 'warning',
    op: '>',
    threshold: 0.5,
    forSeconds: 0,
    expr:
      'histogram_quantile(0.95, sum by (queue, le)' +
      ' (rate(usher_publish_to_ack_seconds_bucket[5m]))) > 0.5',
    summary: 'p95 publish-to-ack latency of {{ $labels.queue }} is {{ printf "%.2f" $value }}s',
    measure: (w) => p95PublishToAck(w),
  },
  {
    name: 'UsherMemoryHigh',
    severity: 'warning',
    op: '>',
    threshold: 0.85,
    forSeconds: FIVE_MINUTES,
    expr: 'usher_memory_used_bytes / usher_memory_budget_bytes > 0.85',
    summary: 'Usher uses {{ printf "%.2f" $value }} of its memory budget',
    measure: (w) => [
      { labels: {}, value: w.latest.memoryUsedBytes / w.latest.memoryBudgetBytes },
    ],
  },
  {
    name: 'UsherDiskHigh',
    severity: 'critical',
    op: '>',
    threshold: 0.8,
    forSeconds: 0,
    expr:
      '1 - usher_disk_free_bytes / usher_disk_size_bytes > 0.8' +
      ' and usher_disk_free_bytes >= 0',
    summary: 'The disk of the data folder is {{ printf "%.2f" $value }} full',
    measure: (w) => diskUsed(w.latest),
  },
  {
    name: 'UsherQueueLong',
    severity: 'warning',
    op: '>',
    threshold: 10_000,
    forSeconds: 0,
    expr:
      'usher_queue_messages > 10000' +
      ' unless on (queue) usher_dead_letter_queue_messages',
    summary: 'Queue {{ $labels.queue }} holds {{ $value }} messages',
    measure: (w) => perWorkQueue(w.latest, (q) => q.total),
  },
  {
    name: 'UsherErrorRate',
    severity: 'warning',
    op: '>',
    threshold: 0.01,
    forSeconds: 0,
    expr:
      'sum by (queue) (rate(usher_delivery_failures_total[5m]))' +
      ' / sum by (queue) (rate(usher_messages_delivered_total[5m])) > 0.01',
    summary:
      '{{ $value | humanizePercentage }} of deliveries from {{ $labels.queue }}' +
      ' failed over the last 5 minutes',
    measure: (w) => errorRatio(w),
  },
  {
    name: 'UsherDeadLetters',
    severity: 'warning',
    op: '>',
    threshold: 100,
    forSeconds: 0,
    expr: 'usher_dead_letter_queue_messages > 100',
    summary: 'Dead-letter queue {{ $labels.queue }} holds {{ $value }} messages',
    measure: (w) =>
      Object.entries(w.latest.queues)
        .filter(([, q]) => q.deadLetterQueue)
        .map(([queue, q]) => ({ labels: { queue }, value: q.total })),
  },
  {
    name: 'UsherAuthFailures',
    severity: 'warning',
    op: '>',
    threshold: 5,
    forSeconds: 0,
    expr: 'sum by (protocol) (increase(usher_auth_failures_total[1m])) > 5',
    summary: '{{ $value }} failed logins over {{ $labels.protocol }} in a minute',
    measure: (w) =>
      Object.keys(w.latest.authFailures).map((protocol) => ({
        labels: { protocol },
        value: w.increase(ONE_MINUTE, (s) => s.authFailures[protocol]),
      })),
  },
  {
    // A start or a scrub found damage in the log: the messages it hit are
    // named in the log, and the disk may be failing (docs/storage.md).
    name: 'UsherLogDamaged',
    severity: 'critical',
    op: '>',
    threshold: 0,
    forSeconds: 0,
    expr: 'usher_store_corrupt_regions > 0',
    summary:
      '{{ $value }} damaged stretches found in the log; see the broker log for the messages hit',
    measure: (w) => [{ labels: {}, value: w.latest.corruptRegions }],
  },
  {
    name: 'UsherUnderReplicated',
    severity: 'critical',
    op: '>',
    threshold: 0,
    forSeconds: 0,
    expr: 'usher_under_replicated_queues > 0',
    summary: '{{ $value }} queues have fewer replicas than they should',
    measure: (w) => [{ labels: {}, value: w.latest.underReplicatedQueues }],
  },
  {
    name: 'UsherLeaderElections',
    severity: 'warning',
    op: '>',
    threshold: 1,
    forSeconds: 0,
    expr: 'increase(usher_leader_elections_total[1m]) > 1',
    summary: '{{ $value }} leader elections in the last minute',
    measure: (w) => [
      { labels: {}, value: w.increase(ONE_MINUTE, (s) => s.leaderElections) },
    ],
  },
];

/** True when `value` crosses the rule's threshold. */
export function crosses(rule: AlertRule, value: number): boolean {
  return rule.op === '>' ? value > rule.threshold : value === rule.threshold;
}

/** The Prometheus rules file (deploy/prometheus/usher-alerts.yml). */
export function renderAlertRulesYaml(rules: readonly AlertRule[] = ALERT_RULES): string {
  const lines = [
    '# Generated from src/observe/alert-rules.ts by',
    '# `node dist/src/observe/write-alert-rules.js`; edit the source, not this.',
    'groups:',
    '  - name: usher',
    '    rules:',
  ];
  for (const rule of rules) {
    lines.push(`      - alert: ${rule.name}`);
    lines.push(`        expr: ${JSON.stringify(rule.expr)}`);
    if (rule.forSeconds > 0) lines.push(`        for: ${durationText(rule.forSeconds)}`);
    lines.push('        labels:');
    lines.push(`          severity: ${rule.severity}`);
    lines.push('        annotations:');
    lines.push(`          summary: ${JSON.stringify(rule.summary)}`);
  }
  return `${lines.join('\n')}\n`;
}

function durationText(seconds: number): string {
  return seconds % 60 === 0 ? `${seconds / 60}m` : `${seconds}s`;
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

function perWorkQueue(
  sample: Sample,
  value: (queue: QueueSample) => number,
): Measurement[] {
  return Object.entries(sample.queues)
    .filter(([, q]) => !q.deadLetterQueue)
    .map(([queue, q]) => ({ labels: { queue }, value: value(q) }));
}

function diskUsed(sample: Sample): Measurement[] {
  if (sample.diskFreeBytes < 0 || sample.diskSizeBytes <= 0) return [];
  return [{ labels: {}, value: 1 - sample.diskFreeBytes / sample.diskSizeBytes }];
}

function p95PublishToAck(w: SampleWindow): Measurement[] {
  const then = w.before(FIVE_MINUTES);
  const out: Measurement[] = [];
  for (const [queue, now] of Object.entries(w.latest.queues)) {
    const before = then.queues[queue]?.publishToAck;
    const reset = before === undefined || before.count > now.publishToAck.count;
    const cumulative = now.publishToAck.cumulative.map(
      (count, i) => count - (reset ? 0 : before.cumulative[i]),
    );
    const total = now.publishToAck.count - (reset ? 0 : before.count);
    const value = quantileOf(0.95, cumulative, total);
    if (!Number.isNaN(value)) out.push({ labels: { queue }, value });
  }
  return out;
}

function errorRatio(w: SampleWindow): Measurement[] {
  const out: Measurement[] = [];
  for (const queue of Object.keys(w.latest.queues)) {
    const delivered = w.increase(FIVE_MINUTES, (s) => s.queues[queue]?.delivered);
    const failed = w.increase(FIVE_MINUTES, (s) => s.queues[queue]?.failures);
    if (delivered > 0) out.push({ labels: { queue }, value: failed / delivered });
  }
  return out;
}
