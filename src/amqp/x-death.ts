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

/**
 * x-death and x-first-death-* as typed AMQP headers. `published` is the
 * table the message was published with, if any: a client that republishes
 * a message it received (a retry through a delay queue) sends its x-death
 * along, and RabbitMQ 3.10 counts on from it. A later death in the same
 * queue for the same reason adds to that entry's count and moves it first;
 * the others are kept as sent, and x-first-death-* (if any). Without this an
 * application counting its retries in x-death saw 1 every time, and
 * retried for ever.
 */
export function deathTable(
  headers: Record<string, string>,
  published?: FieldTable,
): FieldTable {
  const history = historyOf(headers);
  if (history.length === 0) return new Map();

  const tables = mergedDeaths(headers, published);

  const [first] = history;
  const table = new Map<string, FieldValue>([['x-death', { type: 'A', value: tables }]]);
  // RabbitMQ writes them only at a message's first death: not when it
  // came with an x-death.
  if (published?.has('x-death') !== true) {
    table.set('x-first-death-exchange', { type: 'S', value: first.exchange ?? '' });
    table.set('x-first-death-queue', { type: 'S', value: first.queue });
    table.set('x-first-death-reason', { type: 'S', value: rabbitReason(first.reason) });
  }
  return table;
}

/**
 * The queue and reason of each x-death entry a message would be delivered
 * with, latest first: for RabbitMQ's cycle check (isDeadLetterCycle),
 * which reads the x-death a message was published with too. A message
 * published claiming it had expired from a queue it is now dead-lettered
 * into is dropped, as RabbitMQ 3.10 drops it.
 */
export function deathKeys(
  headers: Record<string, string>,
  published?: FieldTable,
): Array<{ queue: string; reason: string }> {
  return mergedDeaths(headers, published).flatMap((value) => {
    if (value.type !== 'F') return [];
    const queue = textOf(value.value.get('queue'));
    const reason = textOf(value.value.get('reason'));
    return queue === undefined || reason === undefined ? [] : [{ queue, reason }];
  });
}

/** The x-death tables: Usher's deaths counted on the published ones (countOn). */
function mergedDeaths(headers: Record<string, string>, published?: FieldTable): FieldValue[] {
  const ours = deathEntries(headers).map(entryTable);
  const sent = published?.get('x-death');
  return sent?.type === 'A' ? countOn(sent.value, ours) : ours;
}

/**
 * `sent` (x-death as published, latest first) with `ours` (Usher's own
 * deaths, latest first) counted on: each of ours, oldest first, adds its
 * count to the sent entry of its queue and reason and moves it first, or
 * goes first as it is. A queue and reason the publisher listed twice is
 * kept once, as first listed, the later ones dropped with their counts,
 * as RabbitMQ 3.10 keeps them at the next death. Not copied from it: its
 * regrouping also reverses the order of the other entries, adds a count
 * of 1 to one that has none, and counts an entry without a reason in its
 * cycle check (breaker session); here they keep their order and fields.
 */
function countOn(sent: readonly FieldValue[], ours: FieldValue[]): FieldValue[] {
  const tables = firstOfEachDeath(sent);
  for (const own of [...ours].reverse()) {
    const ownTable = (own as { value: FieldTable }).value;
    const at = tables.findIndex((value) =>
      value.type === 'F' &&
      textOf(value.value.get('queue')) === textOf(ownTable.get('queue')) &&
      textOf(value.value.get('reason')) === textOf(ownTable.get('reason')));
    if (at < 0) {
      tables.unshift(own);
      continue;
    }
    const [match] = tables.splice(at, 1);
    const matchTable = new Map((match as { value: FieldTable }).value);
    const count = countValue(matchTable.get('count')) + countValue(ownTable.get('count'));
    // A signed long, as x-death's count is: a sum past it stays at it.
    matchTable.set('count', { type: 'l', value: count > MAX_LONG ? MAX_LONG : count });
    tables.unshift({ type: 'F', value: matchTable });
  }
  return tables;
}

/** `sent` without a table whose queue and reason an earlier one had. */
function firstOfEachDeath(sent: readonly FieldValue[]): FieldValue[] {
  const seen = new Set<string>();
  return sent.filter((value) => {
    if (value.type !== 'F') return true;
    const key = `${textOf(value.value.get('queue'))}\u0000${textOf(value.value.get('reason'))}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function entryTable(entry: DeathEntry): FieldValue {
  const table = new Map<string, FieldValue>([
    ['count', { type: 'l', value: BigInt(Math.min(entry.count, Number.MAX_SAFE_INTEGER)) }],
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
}

function textOf(value: FieldValue | undefined): string | undefined {
  if (value?.type !== 'S') return undefined;
  return typeof value.value === 'string' ? value.value : value.value.toString('utf8');
}

const MAX_LONG = 2n ** 63n - 1n;

/** A published count: any integer type a client may have used; else 0. */
function countValue(value: FieldValue | undefined): bigint {
  if (value === undefined) return 0n;
  if (value.type === 'l' || value.type === 'T') return value.value > 0n ? value.value : 0n;
  if (value.type !== 'D' && typeof value.value === 'number' && Number.isSafeInteger(value.value)) {
    return BigInt(Math.max(0, value.value));
  }
  return 0n;
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
export function isDeadLetterCycle(
  entries: ReadonlyArray<{ queue: string; reason: string }>,
  queue: string,
): boolean {
  const at = entries.findIndex((entry) => entry.queue === queue);
  if (at < 0) return false;
  return entries.slice(0, at + 1).every((entry) => entry.reason !== 'rejected');
}

// --- helpers --------------------------------------------------------------

/**
 * The death history as typed records. A producer may set the header to
 * anything (over HTTP, or an AMQP text header): fields of the wrong type
 * are read as absent or empty, never passed on to the encoder, which threw
 * on them at every delivery and closed each consumer's connection.
 */
function historyOf(headers: Record<string, string>): DeathRecord[] {
  return parseHistory<Record<string, unknown>>(headers[HISTORY_HEADER]).map((death) => {
    const record: DeathRecord = {
      reason: textField(death.reason),
      queue: textField(death.queue),
      time: textField(death.time),
    };
    if (typeof death.exchange === 'string') record.exchange = death.exchange;
    if (Array.isArray(death.routingKeys)) {
      record.routingKeys = death.routingKeys.filter(
        (key): key is string => typeof key === 'string');
    }
    if (typeof death.originalExpiration === 'string') {
      record.originalExpiration = death.originalExpiration;
    }
    if (typeof death.count === 'number') record.count = death.count;
    return record;
  });
}

function textField(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/** Seconds since 1970 for an AMQP timestamp (unsigned): 0 for none or before. */
function secondsOf(time: string): bigint {
  const seconds = Math.floor(Date.parse(time) / 1000);
  return BigInt(Number.isSafeInteger(seconds) && seconds > 0 ? seconds : 0);
}
