// The end-of-run audit, ticket id by ticket id: every id the broker
// confirmed for a service's queue must have been processed by that service
// or be in its dead-letter queue, as listed through the API (not taken from
// counters), and the dead-letter queue must hold exactly the malformed
// purchases.

import type { PeekedMessage, UsherClient } from '../../client/index.js';
import type { Service } from './services.js';
import type { ServiceName, ServiceQueues } from './setup.js';

export interface ServiceReport {
  queue: string;
  deadLetterQueue: string;
  /** Distinct ticket ids the broker confirmed on this queue. */
  published: number;
  /** Distinct ticket ids the service processed and acked. */
  processed: number;
  /** Deliveries with attempt > 1 (after a nack or an expired lease). */
  retried: number;
  /** Sends the provider failed, nacked for a retry with backoff. */
  transientFailures: number;
  /** Deliveries of a ticket whose side effect had already happened. */
  duplicates: number;
  crashes: number;
  /**
   * Leases that ran out unsettled, by the broker's count: what a crashed
   * process held, or had been answered with as it died; all redelivered.
   */
  leasesExpired: number;
  /** Messages its handlers held when it crashed. */
  inHandAtCrash: number;
  /** Distinct ticket ids listed in the dead-letter queue. */
  deadLettered: number;
  deadLetters: DeadLetter[];
  /** Dead-lettered ids that are not malformed purchases. */
  unexpectedDeadLetters: string[];
  /** Malformed purchases not found in the dead-letter queue. */
  missingDeadLetters: string[];
  /** Published ids neither processed nor dead-lettered. */
  lost: number;
  /** The first few lost ids, to start looking. */
  lostIds: string[];
  /** Messages still in the queue at the end (ready, leased or delayed). */
  leftInQueue: number;
  /** Client calls that failed and were absorbed by the consumer loop. */
  clientErrors: number;
}

export interface DeadLetter {
  ticketId: string;
  /** The nack reason the service gave, as the broker kept it. */
  reason: string;
}

const SHOWN_LOST_IDS = 20;
const PAGE = 1000;

export async function auditService(
  client: UsherClient,
  queues: ServiceQueues,
  service: Service,
  published: ReadonlySet<string>,
  malformed: ReadonlySet<string>,
): Promise<ServiceReport> {
  const deadLetters = await listDeadLetters(client, queues.deadLetter);
  const dead = new Set(deadLetters.map((letter) => letter.ticketId));
  const { stats: queueStats } = await client.getQueue(queues.queue);

  const lostIds: string[] = [];
  for (const id of published) {
    if (!service.processed.has(id) && !dead.has(id)) lostIds.push(id);
  }

  const { stats } = service;
  return {
    queue: queues.queue,
    deadLetterQueue: queues.deadLetter,
    published: published.size,
    processed: service.processed.size,
    retried: stats.retried,
    transientFailures: stats.transientFailures,
    duplicates: stats.duplicates,
    crashes: stats.crashes,
    leasesExpired: queueStats.leaseExpired,
    inHandAtCrash: stats.inHandAtCrash,
    deadLettered: dead.size,
    deadLetters,
    unexpectedDeadLetters: [...dead].filter((id) => !malformed.has(id)),
    missingDeadLetters: [...malformed].filter((id) => !dead.has(id)),
    lost: lostIds.length,
    lostIds: lostIds.slice(0, SHOWN_LOST_IDS),
    leftInQueue: queueStats.total,
    clientErrors: stats.clientErrors,
  };
}

/** What went wrong in a service's audit, one sentence each; none is a pass. */
export function problemsOf(name: ServiceName, report: ServiceReport): string[] {
  const problems: string[] = [];
  if (report.lost > 0) {
    const some = report.lostIds.slice(0, 5).join(', ');
    problems.push(`${name}: ${report.lost} ticket(s) lost, e.g. ${some}`);
  }
  if (report.unexpectedDeadLetters.length > 0) {
    problems.push(
      `${name}: well-formed ticket(s) dead-lettered: ` +
        report.unexpectedDeadLetters.slice(0, 5).join(', '),
    );
  }
  if (report.missingDeadLetters.length > 0) {
    problems.push(
      `${name}: malformed ticket(s) not in ${report.deadLetterQueue}: ` +
        report.missingDeadLetters.slice(0, 5).join(', '),
    );
  }
  if (report.leftInQueue > 0) {
    problems.push(
      `${name}: ${report.leftInQueue} message(s) still in ${report.queue}`,
    );
  }
  return problems;
}

/**
 * Every message of a dead-letter queue, listed page by page without
 * leasing. The page count is bounded by the queue's size when we start, so
 * a queue still growing cannot keep us here.
 */
async function listDeadLetters(
  client: UsherClient,
  queue: string,
): Promise<DeadLetter[]> {
  const { stats } = await client.getQueue(queue);
  const pages = Math.ceil(stats.total / PAGE) + 1;
  const letters: DeadLetter[] = [];

  for (let page = 0; page < pages; page++) {
    const messages = await client.peek(queue, {
      limit: PAGE,
      offset: page * PAGE,
    });
    for (const message of messages) letters.push(deadLetterOf(message));
    if (messages.length < PAGE) break;
  }
  return letters;
}

/** The ticket id from the event itself; the message id if it has none. */
function deadLetterOf(message: PeekedMessage): DeadLetter {
  const body = message.body as { data?: { ticket_id?: unknown } } | null;
  const fromBody = body?.data?.ticket_id;
  return {
    ticketId: typeof fromBody === 'string' ? fromBody : message.id,
    reason:
      message.headers['x-usher-last-error'] ??
      message.headers['x-usher-death-reason'] ??
      'unknown',
  };
}
