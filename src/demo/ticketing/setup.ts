// The demo's queues: one per downstream service, each with its own
// dead-letter queue, retry limit and backoff. Names carry the run id
// (`tickets.<run>.email`), so a rerun against a long-lived broker starts
// from empty queues without purging anyone else's.

import { randomBytes } from 'node:crypto';

import type { QueueSettingsInput, UsherClient } from '../../client/index.js';

export const SERVICE_NAMES = ['payment', 'email', 'sms'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** The timings a run can shorten (tests) or stretch. */
export interface QueueTimings {
  /** Lease of an e-mail delivery: how soon a crashed sender's mail moves on. */
  emailVisibilityTimeoutMs: number;
  /** First retry delay after a nack; doubles up to retryMaxMs. */
  retryInitialMs: number;
  retryMaxMs: number;
}

export interface ServiceQueues {
  service: ServiceName;
  queue: string;
  deadLetter: string;
  /** Priority of this service's events: payment first. */
  priority: number;
  settings: QueueSettingsInput;
}

/** A fresh run id: base-36 time plus random bits, e.g. `mgx3k2a1-4f9c`. */
export function newRunId(): string {
  return `${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;
}

export function plannedQueues(
  runId: string,
  timings: QueueTimings,
): ServiceQueues[] {
  const backoff = {
    initialMs: timings.retryInitialMs,
    multiplier: 2,
    maxMs: timings.retryMaxMs,
    jitter: 0.2,
  };
  const plan = (
    service: ServiceName,
    priority: number,
    settings: QueueSettingsInput,
  ): ServiceQueues => {
    const queue = `tickets.${runId}.${service}`;
    const deadLetter = `${queue}.dlq`;
    return {
      service,
      queue,
      deadLetter,
      priority,
      settings: { ...settings, deadLetter },
    };
  };

  // maxAttempts leaves room for every retry the demo provokes (a crash
  // redelivery, two SMS provider failures) with margin: only malformed
  // purchases, rejected outright, should reach a dead-letter queue.
  return [
    plan('payment', 9, { maxAttempts: 5, backoff, visibilityTimeoutMs: 10_000 }),
    plan('email', 5, {
      maxAttempts: 5,
      backoff,
      visibilityTimeoutMs: timings.emailVisibilityTimeoutMs,
    }),
    plan('sms', 3, { maxAttempts: 6, backoff, visibilityTimeoutMs: 10_000 }),
  ];
}

/** Creates the dead-letter queues first, then the queues feeding them. */
export async function createQueues(
  client: UsherClient,
  queues: readonly ServiceQueues[],
): Promise<void> {
  for (const { deadLetter } of queues) {
    await client.createQueue(deadLetter, { maxAttempts: 0 });
  }
  for (const { queue, settings } of queues) {
    await client.createQueue(queue, settings);
  }
}

/** Deletes the run's queues, feeders before the queues they feed. */
export async function deleteQueues(
  client: UsherClient,
  queues: readonly ServiceQueues[],
): Promise<void> {
  for (const { queue } of queues) await client.deleteQueue(queue);
  for (const { deadLetter } of queues) await client.deleteQueue(deadLetter);
}
