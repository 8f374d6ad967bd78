// What the broker and its protocol servers count beyond the per-queue
// figures the engine keeps: connections, failed logins, refused
// publishes, dead letters by reason and latency histograms. One set per
// broker (several brokers live in one test process), found through the
// broker object itself, so the code that records needs nothing but the
// broker it already holds:
//
//   recordAuthFailure(broker, 'amqp');          // a login was refused
//   const done = trackConnection(broker, 'http'); ... done();
//
// Everything here is a plain number or a Map entry bumped in place; the
// metrics, alerts and dashboard read them when asked.

import type { Registry } from 'prom-client';

import type { QueueStats } from '../broker/types.js';
import { LatencyHistogram } from './latency.js';
import type { Sampler } from './sampler.js';
import { DEFAULT_LAG_TARGET_SECONDS } from './scaling.js';

/** Protocols whose series exist (at 0) before anything happens on them. */
export const PROTOCOLS = ['http', 'amqp'] as const;

export interface QueueLatency {
  /** From publish to the ack of the delivery that settled the message. */
  readonly publishToAck: LatencyHistogram;
  /** From when the message became deliverable to its delivery. */
  readonly timeInQueue: LatencyHistogram;
}

/**
 * Registers extra metrics on the /metrics registry, for parts of Usher
 * that own figures of their own (admission control). Called once per
 * registry, and again for every registry created later.
 */
export type MetricsInstaller = (registry: Registry) => void;

/** What broker-wide figures (the dashboard's chart) sum over the queues. */
export interface QueueTraffic extends QueueLatency {
  published: number;
  delivered: number;
  acked: number;
}

export class Observations {
  readonly connections = zeroPerProtocol();
  readonly authFailures = zeroPerProtocol();
  readonly unauthorized = zeroPerProtocol();
  /** Refused publishes by error code (DISK_FULL, MESSAGE_TOO_LARGE...). */
  readonly refusedPublishes = new Map<string, number>();
  /** Per queue, messages that died there by reason (dead-lettered or dropped). */
  readonly deaths = new Map<string, Map<string, number>>();
  readonly latency = new Map<string, QueueLatency>();
  /**
   * The traffic of every queue deleted since the broker opened, added up
   * when each went: broker-wide rates are the live queues' sum plus this,
   * or a queue deleted between two samples would take its last seconds
   * of traffic with it.
   */
  readonly deletedQueues: QueueTraffic = {
    published: 0,
    delivered: 0,
    acked: 0,
    publishToAck: new LatencyHistogram(),
    timeInQueue: new LatencyHistogram(),
  };
  readonly installers: MetricsInstaller[] = [];
  /** Set while an HTTP server samples this broker (src/observe/routes.ts). */
  sampler: Sampler | null = null;
  lagTargetSeconds = DEFAULT_LAG_TARGET_SECONDS;

  queueLatency(queue: string): QueueLatency {
    let latency = this.latency.get(queue);
    if (latency === undefined) {
      latency = {
        publishToAck: new LatencyHistogram(),
        timeInQueue: new LatencyHistogram(),
      };
      this.latency.set(queue, latency);
    }
    return latency;
  }

  died(queue: string, reason: string): void {
    let reasons = this.deaths.get(queue);
    if (reasons === undefined) {
      reasons = new Map();
      this.deaths.set(queue, reasons);
    }
    bump(reasons, reason);
  }

  /**
   * A deleted queue's figures go with it, as its engine's do; only its
   * traffic (`stats`, its final counts) stays, in deletedQueues.
   */
  forgetQueue(
    queue: string,
    stats: Pick<QueueStats, 'published' | 'delivered' | 'acked'>,
  ): void {
    const gone = this.deletedQueues;
    gone.published += stats.published;
    gone.delivered += stats.delivered;
    gone.acked += stats.acked;
    const latency = this.latency.get(queue);
    if (latency !== undefined) {
      gone.publishToAck.add(latency.publishToAck);
      gone.timeInQueue.add(latency.timeInQueue);
    }

    this.latency.delete(queue);
    this.deaths.delete(queue);
  }
}

const perBroker = new WeakMap<object, Observations>();

export function observationsOf(broker: object): Observations {
  let observations = perBroker.get(broker);
  if (observations === undefined) {
    observations = new Observations();
    perBroker.set(broker, observations);
  }
  return observations;
}

/** A client failed to authenticate (bad credentials, unknown user). */
export function recordAuthFailure(broker: object, protocol: string): void {
  bump(observationsOf(broker).authFailures, protocol);
}

/** An authenticated client asked for something it may not do. */
export function recordUnauthorized(broker: object, protocol: string): void {
  bump(observationsOf(broker).unauthorized, protocol);
}

/** A publish was refused; `reason` is the error code the client got. */
export function recordPublishRefused(broker: object, reason: string): void {
  bump(observationsOf(broker).refusedPublishes, reason);
}

/** Counts an open connection; call the answer once when it closes. */
export function trackConnection(broker: object, protocol: string): () => void {
  const { connections } = observationsOf(broker);
  bump(connections, protocol);
  let open = true;
  return () => {
    if (!open) return;
    open = false;
    connections.set(protocol, (connections.get(protocol) ?? 1) - 1);
  };
}

/** See MetricsInstaller. */
export function addMetrics(broker: object, install: MetricsInstaller): void {
  observationsOf(broker).installers.push(install);
}

function zeroPerProtocol(): Map<string, number> {
  return new Map(PROTOCOLS.map((protocol) => [protocol, 0]));
}

function bump(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}
