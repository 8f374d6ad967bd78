// `usher plan` arithmetic: from a load (rates, size, how long messages
// may wait, consumers) and a calibration (per-message costs) to disk,
// memory, cores, consumers and drain time. Pure functions; every output
// carries the formula and numbers it came from, so the answer can be
// checked by hand.

import { type Calibration, at } from './calibration.js';

export interface PlanInput {
  /** Average publish rate, messages/s. */
  rate: number;
  /** Peak publish rate (the on-sale), messages/s; default: rate. */
  peakRate: number;
  /** How long the peak lasts, ms. */
  peakDurationMs: number;
  sizeBytes: number;
  /** How long a message may wait unconsumed, ms (sizes disk and memory). */
  retentionMs: number;
  /** Consumers per queue available; null: plan them. */
  consumers: number | null;
  /** One consumer's time per message, ms. */
  consumerTimeMs: number;
  replicas: number;
  /** Share kept free on every resource, 0 to <1 (0.3 = 30%). */
  headroom: number;
  /** Lag the consumers must keep under at peak, ms. */
  lagTargetMs: number;
}

export interface PlanStep {
  what: string;
  formula: string;
  value: number;
  unit: string;
}

export interface Plan {
  input: PlanInput;
  /** Messages that may wait at once (retention at the average rate, or the peak backlog). */
  waitingMessages: number;
  diskBytes: number;
  memoryBytes: number;
  cores: number;
  consumersNeeded: number;
  /** Backlog left when the peak ends, with the consumers counted. */
  peakBacklog: number;
  /** Seconds to drain it at the average rate; Infinity when it never drains. */
  drainSeconds: number;
  /** Messages per fdatasync the broker must group at peak. */
  messagesPerFsync: number;
  steps: PlanStep[];
}

export function plan(input: PlanInput, calibration: Calibration): Plan {
  const steps: PlanStep[] = [];
  const step = (what: string, formula: string, value: number, unit: string): number => {
    steps.push({ what, formula, value, unit });
    return value;
  };
  const free = 1 - input.headroom;
  const size = input.sizeBytes;

  const serviceRate = 1000 / input.consumerTimeMs;
  // Enough consumers to carry the peak at the target utilisation, and to
  // clear one lag-target's worth of arrivals within the target.
  const forRate = Math.ceil(input.peakRate / serviceRate / free);
  const consumersNeeded = step(
    'consumers per queue',
    `ceil(peak ${input.peakRate}/s / (1000 / ${input.consumerTimeMs} ms per message)` +
      ` / (1 - headroom ${input.headroom}))`,
    Math.max(1, forRate),
    'consumers',
  );
  const consumers = input.consumers ?? consumersNeeded;
  const capacity = step(
    'consume capacity',
    `${consumers} consumers x ${round(serviceRate)}/s`,
    consumers * serviceRate,
    'msg/s',
  );

  const peakBacklog = step(
    'backlog when the peak ends',
    `max(0, peak ${input.peakRate}/s - capacity ${round(capacity)}/s)` +
      ` x ${input.peakDurationMs / 1000} s`,
    Math.max(0, input.peakRate - capacity) * (input.peakDurationMs / 1000),
    'messages',
  );
  const drainRate = capacity - input.rate;
  const drainSeconds = step(
    'time to drain it',
    peakBacklog === 0
      ? 'no backlog'
      : `backlog ${Math.round(peakBacklog)} / ` +
        `(capacity ${round(capacity)}/s - average ${input.rate}/s)`,
    peakBacklog === 0 ? 0 : drainRate <= 0 ? Infinity : peakBacklog / drainRate,
    's',
  );

  const retained = input.rate * (input.retentionMs / 1000);
  const waitingMessages = step(
    'messages waiting at most',
    `max(average ${input.rate}/s x retention ${input.retentionMs / 1000} s,` +
      ` peak backlog ${Math.round(peakBacklog)})`,
    Math.ceil(Math.max(retained, peakBacklog)),
    'messages',
  );

  const diskPer = at(calibration.diskBytesPerMessage, size);
  const diskBytes = step(
    'disk',
    `${waitingMessages} x ${round(diskPer)} B (log bytes per ${size} B message)` +
      ` x ${input.replicas} replicas / (1 - ${input.headroom})`,
    Math.ceil((waitingMessages * diskPer * input.replicas) / free),
    'bytes',
  );

  const memoryPer = at(calibration.memoryBytesPerMessage, size);
  const memoryBytes = step(
    'memory per broker',
    `(idle ${calibration.idleRssBytes} B + ${waitingMessages} x ${round(memoryPer)} B` +
      ` per waiting message) / (1 - ${input.headroom})`,
    Math.ceil((calibration.idleRssBytes + waitingMessages * memoryPer) / free),
    'bytes',
  );

  const publishUs = at(calibration.publishCpuUs, size);
  const cpuUsPerMessage = publishUs + calibration.consumeCpuUs;
  // A follower stores each message as the leader does: a publish's cost.
  const cores = step(
    'broker CPU cores',
    `peak ${input.peakRate}/s x (publish ${round(publishUs)} us` +
      ` + consume ${round(calibration.consumeCpuUs)} us` +
      ` + ${input.replicas - 1} replicas x ${round(publishUs)} us) / 1e6 / (1 - ${input.headroom})`,
    (input.peakRate * (cpuUsPerMessage + (input.replicas - 1) * publishUs)) / 1e6 / free,
    'cores',
  );

  const messagesPerFsync = step(
    'messages per fdatasync at peak',
    `peak ${input.peakRate}/s / ${round(calibration.fsyncsPerSecond)} fdatasync/s`,
    input.peakRate / calibration.fsyncsPerSecond,
    'messages',
  );

  const lagAtPeak = capacity > input.peakRate ? 0 : Infinity;
  step(
    'lag at peak vs target',
    capacity > input.peakRate
      ? `capacity ${round(capacity)}/s > peak: lag stays near one service time` +
        ` (${input.consumerTimeMs} ms), target ${input.lagTargetMs} ms`
      : `capacity ${round(capacity)}/s <= peak: lag grows for the whole peak,` +
        ` target ${input.lagTargetMs} ms missed`,
    lagAtPeak,
    'ms',
  );

  return {
    input,
    waitingMessages,
    diskBytes,
    memoryBytes,
    cores: round(cores),
    consumersNeeded,
    peakBacklog: Math.round(peakBacklog),
    drainSeconds: Number.isFinite(drainSeconds) ? round(drainSeconds) : Infinity,
    messagesPerFsync: round(messagesPerFsync),
    steps,
  };
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
