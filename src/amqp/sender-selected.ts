// Sender-selected distribution, RabbitMQ's extension: a publish whose
// headers hold `CC` or `BCC` (arrays of long strings, names as written)
// is routed with each of their keys as well as its routing key, all at
// once (ExchangeTable.route). `BCC` is taken out of the message before it
// is stored, so no consumer learns who else got it; `CC` stays.
//
// As in RabbitMQ 3.10: entries of another type in the arrays are skipped,
// and a `CC` or `BCC` that is not an array refuses the publish (406), in
// a transaction too at once. Unlike RabbitMQ, a dead-lettered message is
// not routed by its `CC` keys again, only listed with them in x-death
// (dead-letter-exchange.ts says why).

import { REPLY } from './constants.js';
import { AmqpError } from './errors.js';
import type { FieldTable, FieldValue } from './field-table.js';

const CC = 'CC';
const BCC = 'BCC';

/**
 * The keys a publish is routed by: its routing key alone (nearly every
 * publish: two lookups), or with those of CC and then BCC after it. A key
 * named twice is matched twice; the queues it reaches count once.
 */
export function routingKeysOf(routingKey: string, headers: FieldTable): string | string[] {
  if (headers.size === 0) return routingKey;
  const cc = headers.get(CC);
  const bcc = headers.get(BCC);
  if (cc === undefined && bcc === undefined) return routingKey;
  const keys = [routingKey];
  if (cc !== undefined) keysOf(CC, cc, keys);
  if (bcc !== undefined) keysOf(BCC, bcc, keys);
  return keys;
}

/** `headers` without BCC: the same table when it has none. */
export function withoutBcc(headers: FieldTable): FieldTable {
  if (!headers.has(BCC)) return headers;
  const kept = new Map(headers);
  kept.delete(BCC);
  return kept;
}

/** The CC keys a stored message's typed headers still carry. */
export function ccKeysOf(headers: FieldTable | undefined): string[] {
  const cc = headers?.get(CC);
  if (cc === undefined || cc.type !== 'A') return [];
  return keysOf(CC, cc, []);
}

function keysOf(name: string, value: FieldValue, into: string[]): string[] {
  if (value.type !== 'A') {
    throw new AmqpError(REPLY.PRECONDITION_FAILED, `invalid message: the ${name} header ` +
      `must be an array of long strings, not of type '${value.type}'`);
  }
  for (const entry of value.value) {
    if (entry.type !== 'S') continue;
    // Bytes that are not UTF-8 read as a routing key on the wire does,
    // with U+FFFD in place of the bad ones.
    into.push(typeof entry.value === 'string' ? entry.value : entry.value.toString('utf8'));
  }
  return into;
}
