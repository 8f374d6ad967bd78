// Headers a message gains when it is dead-lettered. The latest death is in
// flat headers that are easy to filter on; the first death is written once
// and never overwritten; `x-usher-deaths` keeps the deaths as JSON so a
// message dead-lettered twice (CASES.md C5) shows both. A message in a
// retry loop dies again every lap, for as long as its consumer rejects it:
// of each queue and reason only the first and the latest death are kept,
// the first counting those folded into it, so the history stays as small
// as RabbitMQ's x-death (one entry per queue and reason, with a count).

import type { QueueEngine } from '../engine/queue.js';
import type { DeathReason, Message } from '../engine/types.js';
import type { LogRecord, PublishedRecord } from '../storage/records.js';
import { unshared } from '../util/random-id.js';
import { isLogged, moveRecords } from './durability.js';
import { messageFrom, moveTo, pinsLittle, shorterTtl } from './messages.js';
import type { PublishInput } from './types.js';

export const DEATH_HEADERS = {
  reason: 'x-usher-death-reason',
  queue: 'x-usher-death-queue',
  attempts: 'x-usher-death-attempts',
  time: 'x-usher-death-time',
  count: 'x-usher-death-count',
  firstReason: 'x-usher-first-death-reason',
  firstQueue: 'x-usher-first-death-queue',
  firstTime: 'x-usher-first-death-time',
  history: 'x-usher-deaths',
} as const;

export interface DeathRecord {
  reason: DeathReason;
  queue: string;
  attempts: number;
  time: string;
  publishedAt: string;
  /** When the message would have expired, had it stayed. */
  expiresAt?: string;
  /** The consumer's last nack reason, when it gave one. */
  error?: string;
  /**
   * Deaths of this queue and reason this record stands for, itself
   * included (later ones but the latest are folded into the first);
   * absent: 1.
   */
  count?: number;
}

/** The headers of `message` after it dies in `queue` for `reason`. */
export function deathHeaders(
  message: Message,
  queue: string,
  reason: DeathReason,
  now: number,
  error: string | undefined,
): Record<string, string> {
  const time = new Date(now).toISOString();
  const record: DeathRecord = {
    reason,
    queue,
    attempts: message.failures,
    time,
    publishedAt: new Date(message.publishedAt).toISOString(),
  };
  if (message.expiresAt !== null) record.expiresAt = new Date(message.expiresAt).toISOString();
  if (error !== undefined) record.error = error;

  const headers = { ...message.headers };
  const history = foldRepeats([...parseHistory(headers[DEATH_HEADERS.history]), record]);
  let deaths = 0;
  for (const death of history) deaths += countOf(death);

  headers[DEATH_HEADERS.reason] = reason;
  headers[DEATH_HEADERS.queue] = queue;
  headers[DEATH_HEADERS.attempts] = String(message.failures);
  headers[DEATH_HEADERS.time] = time;
  headers[DEATH_HEADERS.count] = String(deaths);
  headers[DEATH_HEADERS.firstReason] ??= reason;
  headers[DEATH_HEADERS.firstQueue] ??= queue;
  headers[DEATH_HEADERS.firstTime] ??= time;
  headers[DEATH_HEADERS.history] = JSON.stringify(history);
  return headers;
}

/**
 * The death history a message carries (`x-usher-deaths`); empty when it
 * has none or the header is not a JSON array. A protocol adapter reads
 * its own fields from the same records (`T`).
 */
export function parseHistory<T = DeathRecord>(text: string | undefined): T[] {
  if (text === undefined) return [];
  try {
    const parsed: unknown = JSON.parse(text);
    if (!Array.isArray(parsed)) return [];
    // Its records too: only objects are read as deaths.
    return parsed.filter((death) => typeof death === 'object' && death !== null) as T[];
  } catch {
    // A producer may have set the header to anything; start a new history.
    return [];
  }
}

/** How many deaths a history record stands for (a producer may have set anything). */
export function countOf(death: { count?: unknown }): number {
  const { count } = death;
  return typeof count === 'number' && Number.isSafeInteger(count) && count > 1 ? count : 1;
}

/**
 * Drops every death that has one of the same queue and reason before it
 * and another after it, adding its count to the first. What readers take
 * from a history is unchanged: per queue and reason the first death's
 * fields, the total count and the place of the latest (x-death), and the
 * run of expiries at the end (isExpiryCycle).
 */
function foldRepeats(history: DeathRecord[]): DeathRecord[] {
  const key = (death: DeathRecord) => `${String(death.queue)}\u0000${String(death.reason)}`;
  const latest = new Map<string, number>();
  history.forEach((death, at) => latest.set(key(death), at));
  const first = new Map<string, DeathRecord>();
  const kept: DeathRecord[] = [];
  history.forEach((death, at) => {
    const earlier = first.get(key(death));
    if (earlier === undefined) first.set(key(death), death);
    else if (latest.get(key(death)) !== at) {
      earlier.count = countOf(earlier) + countOf(death);
      return;
    }
    kept.push(death);
  });
  return kept;
}

/**
 * True when a message that expired would go back to `target` having only
 * expired since it last died there: with TTLs on both sides of a
 * dead-letter loop it would otherwise spin for ever, its `x-usher-deaths`
 * growing by one entry a lap (RabbitMQ drops it the same way). A consumer
 * rejection on the way, or a limit of attempts, breaks the cycle.
 */
export function isExpiryCycle(headers: Record<string, string>, target: string): boolean {
  const history = parseHistory(headers[DEATH_HEADERS.history]);
  let at = history.length - 1;
  while (at >= 0 && history[at].reason === 'expired') {
    if (history[at].queue === target) return true;
    at--;
  }
  return false;
}

/** Which messages a redrive takes, from its ids, reason and source filters. */
export function redriveFilter(options: {
  ids?: string[];
  reason?: string;
  source?: string;
}): (message: Message) => boolean {
  const ids = options.ids === undefined ? undefined : new Set(options.ids.map(String));
  const { reason, source } = options;
  return (message) =>
    (ids === undefined || ids.has(message.id)) &&
    (reason === undefined || message.headers[DEATH_HEADERS.reason] === reason) &&
    (source === undefined || message.headers[DEATH_HEADERS.queue] === source);
}

/**
 * A protocol adapter's own dead-lettering: AMQP queues dead-letter through
 * an exchange (x-dead-letter-exchange), which only the adapter can route.
 * `route` answers undefined for a queue it does not handle, which then
 * follows its `deadLetter` setting; else the queues the message goes to
 * (none: it is dropped) and its headers there.
 */
export interface DeadLetterRouter {
  route(
    queue: string,
    reason: DeathReason,
    headers: Record<string, string>,
  ): { queues: string[]; headers: Record<string, string> } | undefined;
  /** The queues that dead-letter into `queue` by this router, as it stands. */
  sourcesOf(queue: string): readonly string[];
  /** Whether this router, not the queue's `deadLetter` setting, decides for `queue`. */
  decidesFor(queue: string): boolean;
}

/**
 * Puts a dying message in every queue it was routed to: the first takes
 * the message itself (a `moved` record), each other one a copy with a
 * sequence number of its own (a `published` record, body included).
 */
export function deliverDeadLetter(
  from: QueueEngine,
  message: Message,
  destinations: QueueEngine[],
  headers: Record<string, string>,
  now: number,
  allocateSeq: () => number,
): LogRecord[] {
  const records: LogRecord[] = [];
  destinations.forEach((destination, index) => {
    if (index === 0) {
      records.push(...moveRecords(from, destination, moveTo(destination, message, headers, now)));
      return;
    }
    records.push(...copyDeadLetter(message, destination, headers, now, allocateSeq));
  });
  return records;
}

/**
 * Enqueues a copy of a dying message in `destination`, with a sequence
 * number of its own; its `published` record when that queue is logged.
 * Also for a publish refused under reject-publish-dlx, which has no
 * place in its own queue to move from.
 */
export function copyDeadLetter(
  message: Message,
  destination: QueueEngine,
  headers: Record<string, string>,
  now: number,
  allocateSeq: () => number,
): LogRecord[] {
  const ttl = destination.settings.messageTtlMs;
  const copy: PublishedRecord = {
    type: 'published',
    seq: allocateSeq(),
    queue: destination.name,
    // It may outlive the others of its publish here (util/random-id.ts).
    id: unshared(message.id),
    priority: message.priority,
    group: message.group,
    headers,
    body: message.body,
    publishedAt: message.publishedAt,
    availableAt: now,
    expiresAt: ttl === null ? null : now + ttl,
    failures: 0,
  };
  destination.enqueue(messageFrom(copy), now);
  return isLogged(destination) ? [copy] : [];
}

/**
 * A publish its queue refused under reject-publish-dlx, as the message
 * that dies: it never entered its queue nor the log, so it has no
 * sequence number (-1); only copies of it are stored (copyDeadLetter).
 * Its body may be a view of more (an AMQP socket chunk): the copies keep
 * it in memory, so it gets bytes of its own unless it pins little, as a
 * publish kept in memory does (publishBatch).
 */
export function refusedMessage(
  input: PublishInput,
  id: string,
  now: number,
  queueTtlMs: number | null,
): Message {
  const ttl = shorterTtl(input.ttlMs, queueTtlMs);
  return messageFrom({
    type: 'published',
    seq: -1,
    queue: '',
    id,
    priority: input.priority ?? 0,
    group: input.group ?? null,
    headers: input.headers ?? {},
    body: pinsLittle(input.body) ? input.body : Buffer.from(input.body),
    publishedAt: now,
    availableAt: now,
    expiresAt: ttl === null ? null : now + ttl,
    failures: 0,
  });
}
