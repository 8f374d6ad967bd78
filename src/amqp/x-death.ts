// The dead-letter headers RabbitMQ 3.10 users read, built from the death
// history Usher keeps in `x-usher-deaths` (src/broker/dead-letter.ts):
//
//   x-death                one table per (queue, reason), the latest death
//                          first; `count` grows, the other fields are those
//                          of the first such death:
//                          count, exchange, queue, reason, routing-keys,
//                          time, original-expiration (when it had one)
//   x-first-death-queue    where, why and through which exchange the
//   x-first-death-reason   message died the first time
//   x-first-death-exchange
//
// Usher's history records the queue, reason and time; the AMQP adapter
// adds the exchange and routing keys the message had come by when it dead-
// letters through an exchange (annotateDeath). A death recorded without
// them (a queue dead-lettering by Usher's own `deadLetter` setting) reads
// as the default exchange and the queue's name, which is how such a
// message was addressed.

import { DEATH_HEADERS, countOf, parseHistory } from '../broker/dead-letter.js';
import type { DeathReason } from '../engine/types.js';
import type { FieldTable, FieldValue } from './field-table.js';

const HISTORY_HEADER = DEATH_HEADERS.history;

/** One death as recorded, with what the AMQP adapter adds to it. */
interface DeathRecord {
  reason: string;
  queue: string;
  time: string;
  exchange?: string;
  routingKeys?: string[];
  originalExpiration?: string;
  /** Deaths it stands for (dead-letter.ts folds repeats); absent: 1. */
  count?: number;
}

/** One x-death entry. */
export interface DeathEntry {
  queue: string;
  reason: string;
  count: number;
  time: string;
  exchange: string;
  routingKeys: string[];
  originalExpiration?: string;
}

/** RabbitMQ's names for why a message died. */
const RABBIT_REASONS: Record<DeathReason, string> = {
  rejected: 'rejected',
  expired: 'expired',
  'max-attempts': 'delivery_limit',
  overflow: 'maxlen',
};

export function rabbitReason(reason: string): string {
  return RABBIT_REASONS[reason as DeathReason] ?? reason;
}

/** The x-death entries of a message, latest first (RabbitMQ's order). */
export function deathEntries(headers: Record<string, string>): DeathEntry[] {
  const history = historyOf(headers);
  const byKey = new Map<string, { entry: DeathEntry; last: number }>();
  history.forEach((death, index) => {
    const key = `${death.queue}\u0000${death.reason}`;
    const seen = byKey.get(key);
    if (seen !== undefined) {
      seen.entry.count += countOf(death);
      seen.last = index;
      return;
    }
    const entry: DeathEntry = {
      queue: death.queue,
      reason: rabbitReason(death.reason),
      count: countOf(death),
      time: death.time,
      exchange: death.exchange ?? '',
      routingKeys: death.routingKeys ?? [death.queue],
    };
    if (death.originalExpiration !== undefined) {
      entry.originalExpiration = death.originalExpiration;
    }
    byKey.set(key, { entry, last: index });
  });
  return [...byKey.values()].sort((a, b) => b.last - a.last).map(({ entry }) => entry);
}

/** Whether a message carries a death history (deathTable has something to say). */
export function hasDied(headers: Record<string, string>): boolean {
  return headers[HISTORY_HEADER] !== undefined;
}

/** x-death and x-first-death-* as typed AMQP headers. */
export function deathTable(headers: Record<string, string>): FieldTable {
  const history = historyOf(headers);
  if (history.length === 0) return new Map();

  const tables: FieldValue[] = deathEntries(headers).map((entry) => {
    const table = new Map<string, FieldValue>([
      ['count', { type: 'l', value: BigInt(entry.count) }],
      ['exchange', { type: 'S', value: entry.exchange }],
      ['queue', { type: 'S', value: entry.queue }],
      ['reason', { type: 'S', value: entry.reason }],
      [
        'routing-keys',
        { type: 'A', value: entry.routingKeys.map((key) => ({ type: 'S', value: key })) },
      ],
      ['time', { type: 'T', value: secondsOf(entry.time) }],
    ]);
    if (entry.originalExpiration !== undefined) {
      table.set('original-expiration', { type: 'S', value: entry.originalExpiration });
    }
    return { type: 'F', value: table };
  });

  const [first] = history;
  return new Map<string, FieldValue>([
    ['x-death', { type: 'A', value: tables }],
    ['x-first-death-exchange', { type: 'S', value: first.exchange ?? '' }],
    ['x-first-death-queue', { type: 'S', value: first.queue }],
    ['x-first-death-reason', { type: 'S', value: rabbitReason(first.reason) }],
  ]);
}

/**
 * Adds to the latest recorded death the exchange and routing keys the
 * message had come by, and the per-message TTL it loses (RabbitMQ moves
 * `expiration` into x-death's `original-expiration`). Returns new headers.
 */
export function annotateDeath(
  headers: Record<string, string>,
  came: { exchange: string; routingKeys: string[] },
  expirationHeader: string,
): Record<string, string> {
  const history = historyOf(headers);
  const latest = history.at(-1);
  if (latest === undefined) return headers;

  latest.exchange = came.exchange;
  latest.routingKeys = came.routingKeys;
  const annotated = { ...headers };
  const expiration = headers[expirationHeader];
  if (expiration !== undefined) {
    latest.originalExpiration = expiration;
    delete annotated[expirationHeader];
  }
  annotated[HISTORY_HEADER] = JSON.stringify(history);
  return annotated;
}

/**
 * RabbitMQ's cycle rule: a message that would come back to `queue` with
 * no rejection since it last died there is dropped instead, so a queue
 * whose messages expire into itself does not spin forever.
 */
export function isDeadLetterCycle(entries: DeathEntry[], queue: string): boolean {
  const at = entries.findIndex((entry) => entry.queue === queue);
  if (at < 0) return false;
  return entries.slice(0, at + 1).every((entry) => entry.reason !== 'rejected');
}

// --- helpers --------------------------------------------------------------

function historyOf(headers: Record<string, string>): DeathRecord[] {
  return parseHistory<DeathRecord>(headers[HISTORY_HEADER]);
}

function secondsOf(time: string): bigint {
  return BigInt(Math.floor(Date.parse(time) / 1000) || 0);
}
