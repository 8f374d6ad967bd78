// `usher plan` arithmetic: from a load (rates, size, how long messages
// may wait, consumers) and a calibration (per-message costs) to disk,
// memory, cores, consumers and drain time. Pure functions; every output
// carries the formula and numbers it came from, so the answer can be
// checked by hand.

import { HOT_READY_LIMIT, HOT_WAITING_BYTES } from '../engine/cold-tier.js';
import { HOT_MEMORY_BYTES, HOT_MESSAGE_BYTES } from '../engine/hot-memory.js';
import { type Calibration, at } from './calibration.js';

/**
 * RSS a waiting message costs once its body waits on disk only (its
 * rows in the log's ledger and the queue's cold backlog): the storage
 * bench held 10M 460-byte messages in 400 MiB (36 B a message) and 2M in
 * 214 MiB (80 B, README "Backlog on disk"); the larger is used.
 */
export const COLD_BYTES_PER_MESSAGE = 80;

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
  /** Fewest consumers that keep lag under the target when the peak ends. */
  consumersForLag: number;
  /** Lag of the last message of the peak, with the consumers counted, ms. */
  lagAtPeakEndMs: number;
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
  const peakSeconds = input.peakDurationMs / 1000;
  // Lag when the peak ends = backlog / capacity + one service time, with
  // backlog = (peak - capacity) x duration. Under the target L when
  // capacity >= peak x D / (D + L - t); never when L < t (L = t: no backlog).
  const lagRoom = (input.lagTargetMs - input.consumerTimeMs) / 1000;
  const consumersForLag = step(
    'consumers to keep lag under the target',
    lagRoom < 0
      ? `lag target ${input.lagTargetMs} ms < one service time ${input.consumerTimeMs} ms:` +
          ' unreachable (the lag target must be at least one service time)'
      : `ceil(peak ${input.peakRate}/s x ${peakSeconds} s / ` +
        `(${peakSeconds} s + ${round(lagRoom)} s)` +
          ` / ${round(serviceRate)}/s per consumer)`,
    lagRoom < 0
      ? Infinity
      : Math.max(
        1,
        Math.ceil((input.peakRate * peakSeconds) / (peakSeconds + lagRoom) / serviceRate),
      ),
    'consumers',
  );
  // Enough consumers to carry the peak at the target utilisation (which
  // also keeps the lag near one service time), and at least those above
  // when the target can be met at all.
  const forRate = Math.max(1, Math.ceil(input.peakRate / serviceRate / free));
  const forLag = Number.isFinite(consumersForLag) ? consumersForLag : 0;
  const consumersNeeded = step(
    'consumers per queue',
    `max(ceil(peak ${input.peakRate}/s / (1000 / ${input.consumerTimeMs} ms per message)` +
      ` / (1 - headroom ${input.headroom})), ${forLag})`,
    Math.max(forRate, forLag),
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

  // A durable queue keeps a backlog's bodies in memory only up to its own
  // window or the broker's budget for waiting messages, whichever holds
  // more (engine/cold-tier.ts, hot-memory.ts); the rest wait on disk with
  // a row in memory. The calibration measured messages all in memory.
  const memoryPer = at(calibration.memoryBytesPerMessage, size);
  const hotMessages = step(
    'waiting messages with their bodies in memory',
    `min(${waitingMessages}, max(queue window min(${HOT_READY_LIMIT}, ` +
      `${HOT_WAITING_BYTES} B / ${size} B), broker budget ${HOT_MEMORY_BYTES} B / ` +
      `(${HOT_MESSAGE_BYTES} + ${size}) B))`,
    Math.min(waitingMessages, Math.max(
      Math.min(HOT_READY_LIMIT, Math.floor(HOT_WAITING_BYTES / size)),
      Math.floor(HOT_MEMORY_BYTES / (HOT_MESSAGE_BYTES + size)),
    )),
    'messages',
  );
  const coldMessages = waitingMessages - hotMessages;
  const memoryBytes = step(
    'memory per broker',
    `(idle ${calibration.idleRssBytes} B + ${hotMessages} x ${round(memoryPer)} B` +
      ` per waiting message in memory + ${coldMessages} x ${COLD_BYTES_PER_MESSAGE} B` +
      ` per one on disk) / (1 - ${input.headroom})`,
    Math.ceil((calibration.idleRssBytes + hotMessages * memoryPer +
      coldMessages * COLD_BYTES_PER_MESSAGE) / free),
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

  // Queueing from random arrivals adds to this; the headroom is for that.
  const lagAtPeakEndMs = step(
    'lag when the peak ends',
    `backlog ${Math.round(peakBacklog)} / capacity ${round(capacity)}/s + ` +
    `${input.consumerTimeMs} ms` +
      ` (target ${input.lagTargetMs} ms)`,
    (peakBacklog / capacity) * 1000 + input.consumerTimeMs,
    'ms',
  );

  return {
    input,
    waitingMessages,
    diskBytes,
    memoryBytes,
    cores: round(cores),
    consumersNeeded,
    consumersForLag,
    lagAtPeakEndMs: round(lagAtPeakEndMs),
    peakBacklog: Math.round(peakBacklog),
    drainSeconds: Number.isFinite(drainSeconds) ? round(drainSeconds) : Infinity,
    messagesPerFsync: round(messagesPerFsync),
    steps,
  };
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
