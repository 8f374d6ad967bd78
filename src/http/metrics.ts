// GET /metrics: Prometheus text read from the broker at scrape time. The
// broker already counts everything per queue (QueueStats) and in the store
// (health().store), so publishing and acking do no metric work at all; a
// scrape takes one snapshot and every metric's `collect` reads from it.
// Every name is documented in docs/metrics.md.

import { performance } from 'node:perf_hooks';

import {
  Counter,
  Gauge,
  Registry,
  collectDefaultMetrics,
} from 'prom-client';

import type { BrokerApi, QueueInfo, QueueStats } from '../broker/types.js';
import {
  histogramValues,
  registerObservedMetrics,
  registerReadHistogram,
} from '../observe/metrics.js';
import { registerAdmissionMetrics } from './admission-metrics.js';

export interface Metrics {
  readonly contentType: string;
  /** Renders every metric as of now. */
  scrape(): Promise<string>;
}

interface Snapshot {
  queues: QueueInfo[];
  health: ReturnType<BrokerApi['health']>;
}

type Kind = 'gauge' | 'counter';

interface QueueMetric {
  name: string;
  help: string;
  kind: Kind;
  value: (stats: QueueStats) => number;
}

const QUEUE_METRICS: QueueMetric[] = [
  gauge(
    'usher_queue_ready_messages',
    'Messages deliverable now',
    (s) => s.ready,
  ),
  gauge(
    'usher_queue_in_flight_messages',
    'Messages leased to a consumer, waiting for ack or nack',
    (s) => s.inFlight,
  ),
  gauge(
    'usher_queue_delayed_messages',
    'Messages waiting for a delay or retry backoff',
    (s) => s.delayed,
  ),
  gauge(
    'usher_queue_messages',
    'Messages in the queue, in any state',
    (s) => s.total,
  ),
  gauge(
    'usher_queue_bytes',
    'Body bytes of every message in the queue',
    (s) => s.bytes,
  ),
  gauge(
    'usher_queue_oldest_ready_age_seconds',
    'Age of the oldest ready message; 0 when none is ready',
    (s) => s.oldestReadyAgeMs / 1000,
  ),
  counter(
    'usher_messages_published_total',
    'Messages stored',
    (s) => s.published,
  ),
  counter(
    'usher_messages_duplicate_total',
    'Publishes of an id already stored within the dedup window',
    (s) => s.duplicates,
  ),
  counter(
    'usher_messages_delivered_total',
    'Deliveries to consumers',
    (s) => s.delivered,
  ),
  counter('usher_messages_acked_total', 'Deliveries acked', (s) => s.acked),
  counter('usher_messages_nacked_total', 'Deliveries nacked', (s) => s.nacked),
  counter(
    'usher_messages_dead_lettered_total',
    'Messages moved to the dead-letter queue',
    (s) => s.deadLettered,
  ),
  counter(
    'usher_messages_expired_total',
    'Messages whose time to live ran out',
    (s) => s.expired,
  ),
  counter(
    'usher_messages_dropped_total',
    'Dead or expired messages with no dead-letter queue to take them',
    (s) => s.dropped,
  ),
  counter(
    'usher_messages_overflowed_total',
    'Waiting messages displaced by the queue overflow policy',
    (s) => s.overflowed,
  ),
  counter(
    'usher_messages_refused_total',
    'Publishes refused by the queue maxLength or maxBytes',
    (s) => s.refused,
  ),
  counter(
    'usher_lease_expired_total',
    'Leases that ran out without an ack or nack',
    (s) => s.leaseExpired,
  ),
];

interface StoreMetric {
  name: string;
  help: string;
  kind: Kind;
}

// The store's figures (health().store) that have names of their own. Any
// other figure still shows, as usher_store_stat{stat="<key>"}.
const STORE_METRICS: Record<string, StoreMetric> = {
  segments: {
    name: 'usher_store_segments',
    help: 'Log segment files',
    kind: 'gauge',
  },
  diskBytes: {
    name: 'usher_store_disk_bytes',
    help: 'Bytes of every log segment on disk',
    kind: 'gauge',
  },
  liveMessages: {
    name: 'usher_store_live_messages',
    help: 'Messages in the log not yet settled',
    kind: 'gauge',
  },
  liveBytes: {
    name: 'usher_store_live_bytes',
    help: 'Body bytes of the live messages',
    kind: 'gauge',
  },
  corruptTails: {
    name: 'usher_store_corrupt_tails',
    help: 'Torn tails of the last segment cut off at recovery',
    kind: 'gauge',
  },
  corruptRegions: {
    name: 'usher_store_corrupt_regions',
    help: 'Damaged stretches inside segments, found at recovery or by a scrub',
    kind: 'gauge',
  },
  scrubDamagedMessages: {
    name: 'usher_store_scrub_damaged_messages',
    help: 'Live messages a scrub found with damaged frames, taken out of their queues',
    kind: 'gauge',
  },
  scrubRunning: {
    name: 'usher_store_scrub_running',
    help: '1 while a scrub checks the log segments in the background',
    kind: 'gauge',
  },
  scrubsCompleted: {
    name: 'usher_store_scrubs_completed_total',
    help: 'Scrubs that checked every segment they were given',
    kind: 'counter',
  },
  scrubbedBytes: {
    name: 'usher_store_scrubbed_bytes_total',
    help: 'Bytes of log segments checked by scrubs',
    kind: 'counter',
  },
  scrubCorruptRegions: {
    name: 'usher_store_scrub_corrupt_regions',
    help: 'Damaged stretches found by scrubs (counted in corrupt_regions too)',
    kind: 'gauge',
  },
  missingSegments: {
    name: 'usher_store_missing_segments',
    help: 'Segment files found missing from the log at recovery',
    kind: 'gauge',
  },
  bytesWritten: {
    name: 'usher_store_written_bytes_total',
    help: 'Bytes appended to the log',
    kind: 'counter',
  },
  batches: {
    name: 'usher_store_batches_total',
    help: 'Write batches appended to the log',
    kind: 'counter',
  },
  syncs: {
    name: 'usher_store_syncs_total',
    help: 'Synced batches of the log (an fdatasync or an O_DSYNC write each)',
    kind: 'counter',
  },
  syncsOverlapped: {
    name: 'usher_store_syncs_overlapped_total',
    help: 'Synced batches started while another synced batch was in flight',
    kind: 'counter',
  },
  compactedMessages: {
    name: 'usher_store_compacted_messages_total',
    help: 'Messages copied forward by compaction',
    kind: 'counter',
  },
  framesReadAhead: {
    name: 'usher_store_frames_read_ahead_total',
    help: 'Cold messages read back from frames read ahead off the event loop',
    kind: 'counter',
  },
  framesReadInLine: {
    name: 'usher_store_frames_read_in_line_total',
    help: 'Cold messages read back synchronously, on the event loop',
    kind: 'counter',
  },
  replayedRecords: {
    name: 'usher_store_replayed_records',
    help: 'Log records replayed at the last start (after its checkpoint, if any)',
    kind: 'gauge',
  },
  openedFromCheckpoint: {
    name: 'usher_store_opened_from_checkpoint',
    help: '1 if the last start loaded a checkpoint, 0 if it replayed the whole log',
    kind: 'gauge',
  },
  checkpointsWritten: {
    name: 'usher_store_checkpoints_written_total',
    help: 'Checkpoints of the log index written',
    kind: 'counter',
  },
  checkpointsFailed: {
    name: 'usher_store_checkpoints_failed_total',
    help: 'Checkpoints that could not be written (the log alone still suffices)',
    kind: 'counter',
  },
  checkpointBytes: {
    name: 'usher_store_checkpoint_bytes',
    help: 'Size of the last checkpoint written',
    kind: 'gauge',
  },
  checkpointBytesWritten: {
    name: 'usher_store_checkpoint_written_bytes_total',
    help: 'Bytes of all checkpoints written, on top of the log',
    kind: 'counter',
  },
  stopped: {
    name: 'usher_store_stopped',
    help: '1 once the log refuses every write after a failed cut-back',
    kind: 'gauge',
  },
  freeDiskBytes: {
    name: 'usher_disk_free_bytes',
    help: 'Free bytes on the data folder disk (-1 when unknown)',
    kind: 'gauge',
  },
  diskSizeBytes: {
    name: 'usher_disk_size_bytes',
    help: 'Size of the data folder disk (-1 when unknown)',
    kind: 'gauge',
  },
  diskFloorBytes: {
    name: 'usher_disk_floor_bytes',
    help: 'Free space below which publishes are refused',
    kind: 'gauge',
  },
};

export function createMetrics(
  broker: BrokerApi,
  options: {
    processMetrics: boolean;
  },
): Metrics {
  // A registry of our own: two servers in one process (tests) must not
  // share or collide in prom-client's global one.
  const registry = new Registry();
  let snapshot: Snapshot | undefined;

  // Every collect runs synchronously at the start of registry.metrics(),
  // so one snapshot serves the whole scrape.
  const current = (): Snapshot =>
    (snapshot ??= { queues: broker.listQueues(), health: broker.health() });

  for (const metric of QUEUE_METRICS) {
    const Metric = metric.kind === 'gauge' ? Gauge : Counter;
    new Metric({
      name: metric.name,
      help: metric.help,
      labelNames: ['queue'],
      registers: [registry],
      collect() {
        this.reset();
        for (const queue of current().queues) {
          setValue(this, { queue: queue.name }, metric.value(queue.stats));
        }
      },
    });
  }

  new Gauge({
    name: 'usher_up',
    help: '1 while the broker reports itself healthy, 0 while degraded',
    registers: [registry],
    collect() {
      this.set(current().health.status === 'ok' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'usher_uptime_seconds',
    help: 'Seconds since the broker opened',
    registers: [registry],
    collect() {
      this.set(current().health.uptimeMs / 1000);
    },
  });
  new Gauge({
    name: 'usher_queues',
    help: 'Queues, dead-letter queues included',
    registers: [registry],
    collect() {
      this.set(current().health.queues);
    },
  });

  registerStoreMetrics(registry, () => current().health.store);
  const batchTimes = broker.storeBatchTimes?.bind(broker);
  if (batchTimes !== undefined) {
    const name = 'usher_store_batch_seconds';
    registerReadHistogram(registry, name,
      'Time from a log batch\'s write starting to its landing (written, and synced if asked)',
      () => histogramValues(name, {}, batchTimes()));
  }
  const installNew = registerObservedMetrics(registry, broker, () => current().queues);
  registerAdmissionMetrics(registry, () => broker.admissionStats?.() ?? null);

  if (options.processMetrics) {
    collectDefaultMetrics({ register: registry, prefix: 'usher_' });
    // The process's CPU counts every thread (libuv's writes and syncs,
    // V8's helpers); this is the one thread that runs all the broker's
    // JavaScript, whose saturation is the broker's limit.
    new Counter({
      name: 'usher_event_loop_busy_seconds_total',
      help: 'Time the event loop spent running, not waiting for I/O or timers',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(performance.eventLoopUtilization().active / 1000);
      },
    });
  }

  return {
    contentType: registry.contentType,
    async scrape() {
      snapshot = undefined;
      installNew();
      return registry.metrics();
    },
  };
}

function registerStoreMetrics(
  registry: Registry,
  store: () => Record<string, number>,
): void {
  for (const [key, metric] of Object.entries(STORE_METRICS)) {
    const Metric = metric.kind === 'gauge' ? Gauge : Counter;
    new Metric({
      name: metric.name,
      help: metric.help,
      registers: [registry],
      collect() {
        this.reset();
        const value = store()[key];
        if (value !== undefined) setValue(this, {}, value);
      },
    });
  }

  new Gauge({
    name: 'usher_store_stat',
    help: 'Store figures not yet exported under a name of their own',
    labelNames: ['stat'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, value] of Object.entries(store())) {
        if (!Object.hasOwn(STORE_METRICS, key)) this.set({ stat: key }, value);
      }
    },
  });
}

// A counter cannot be set, only raised; after reset() raising it by the
// broker's running total gives the same thing.
function setValue(
  metric: Gauge<string> | Counter<string>,
  labels: Record<string, string>,
  value: number,
): void {
  if (metric instanceof Gauge) metric.set(labels, value);
  else metric.inc(labels, value);
}

function gauge(
  name: string,
  help: string,
  value: QueueMetric['value'],
): QueueMetric {
  return { name, help, kind: 'gauge', value };
}

function counter(
  name: string,
  help: string,
  value: QueueMetric['value'],
): QueueMetric {
  return { name, help, kind: 'counter', value };
}
