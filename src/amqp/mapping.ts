// How AMQP messages and queue arguments map onto Usher's. Usher keeps a
// message's headers as text, which HTTP consumers read as they are; AMQP
// content properties and typed header values must still come back to an
// AMQP consumer unchanged. So:
//
//   AMQP property         Usher header          (readable over HTTP too)
//   content-type          content-type
//   content-encoding      content-encoding
//   correlation-id        correlation-id
//   reply-to              reply-to
//   message-id            message-id
//   type / user-id / app-id / cluster-id   type / user-id / app-id / cluster-id
//   timestamp             timestamp             (seconds, decimal)
//   delivery-mode         delivery-mode
//   priority, expiration  the message's priority and TTL
//   headers               each text value as a header of its own, and the
//                         whole typed table in x-usher-amqp-headers
//                         (base64), which wins when read back over AMQP.
//
// The header limits (256, 64 KiB) are the publisher's: over AMQP they
// count the headers table, every entry whatever its type. What the adapter
// writes beside it (properties, exchange, routing key, the typed copy) is
// listed in ownHeaders and bounded apart (broker/checks.ts).

import type { PublishInput, QueueSettingsInput } from '../broker/types.js';
import {
  MAX_HEADERS,
  MAX_ID_LENGTH,
  checkHeaderBytes,
  checkHeaderCount,
} from '../broker/checks.js';
import { InvalidArgumentError } from '../errors.js';
import { MAX_PRIORITY, type OverflowPolicy } from '../engine/types.js';
import { type BasicProperties, HEADERS_BUDGET } from './content.js';
import { preconditionFailed } from './errors.js';
import { FEATURE_ARGUMENTS } from './queue-features.js';
import {
  MAX_TABLE_VALUES,
  TOO_MANY_ENTRIES,
  TOO_MANY_VALUES,
  decodeTable,
  encodeTable,
  plainValue,
  type FieldTable,
  type FieldValue,
  valueSize,
} from './field-table.js';

export const TYPED_HEADERS = 'x-usher-amqp-headers';
/**
 * Usher's message id, for its deduplication window. A header of Usher's
 * own, not `message-id`: RabbitMQ applications reuse message ids freely
 * and would see their messages dropped as duplicates.
 */
export const ID_HEADER = 'x-usher-id';
/** Where an AMQP publish was sent, for basic.deliver's fields. */
export const EXCHANGE_HEADER = 'x-usher-amqp-exchange';
export const ROUTING_KEY_HEADER = 'x-usher-amqp-routing-key';
/**
 * An AMQP priority above Usher's highest (9), as published: the message
 * is ordered as a 9, and its consumers still see the priority it was sent
 * with (a new user's saw a 10 come back as 9).
 */
export const PRIORITY_HEADER = 'x-usher-amqp-priority';
const MAX_AMQP_PRIORITY = 255;

const TEXT_PROPERTIES = [
  ['contentType', 'content-type'],
  ['contentEncoding', 'content-encoding'],
  ['correlationId', 'correlation-id'],
  ['replyTo', 'reply-to'],
  ['messageId', 'message-id'],
  ['type', 'type'],
  ['userId', 'user-id'],
  ['appId', 'app-id'],
  ['clusterId', 'cluster-id'],
  ['expiration', 'expiration'],
] as const;

/** Index in TEXT_PROPERTIES of each property name, and of each header name. */
const BY_PROPERTY = new Map<string, number>(TEXT_PROPERTIES.map(([property], i) => [property, i]));
const BY_HEADER = new Map<string, number>(TEXT_PROPERTIES.map(([, header], i) => [header, i]));

/**
 * Bit i set when `values` has a key that `index` maps to i. A message has
 * few of the ten text properties: looking each of the ten up, most of
 * them absent, in objects of many shapes was the costliest line of the
 * mapping; walking the keys present is not.
 */
function presentText(values: object, index: Map<string, number>): number {
  let present = 0;
  for (const key in values) {
    const i = index.get(key);
    if (i !== undefined) present |= 1 << i;
  }
  return present;
}

/** The lowest bit set in `bits` as an index (bits must not be 0). */
const lowestBit = (bits: number) => 31 - Math.clz32(bits & -bits);

/** Header names that carry properties, not AMQP headers. */
const PROPERTY_HEADERS = new Set<string>([
  ...TEXT_PROPERTIES.map(([, header]) => header),
  'timestamp',
  'delivery-mode',
  TYPED_HEADERS,
  EXCHANGE_HEADER,
  ROUTING_KEY_HEADER,
  PRIORITY_HEADER,
]);

/** A publish as the broker takes it, with the fields fromAmqp always sets. */
export interface MappedPublish extends PublishInput {
  /** The x-usher-id header, when the publisher set one. */
  id: string | undefined;
  body: Buffer;
  headers: Record<string, string>;
  /** Names in `headers` written from the properties, the route and the
   * typed copy; shared between messages, so never changed. */
  ownHeaders: readonly string[];
  priority: number;
  ttlMs: number | undefined;
}

/** Bits of a publish's own headers past the ten text properties. */
const TIMESTAMP_BIT = 1 << TEXT_PROPERTIES.length;
const DELIVERY_MODE_BIT = TIMESTAMP_BIT << 1;

/**
 * ownHeaders of a message without a headers table, by the bits of the
 * properties it has: the same few lists serve every message, where a new
 * array grown a name at a time cost about 90 bytes a publish.
 */
const ownHeadersByBits = new Map<number, readonly string[]>();

/**
 * The publish of `body` with Usher headers, priority and TTL, for a
 * message published over AMQP to `exchange` with `routingKey`, which it
 * keeps as headers of its own. One object, handed to the broker as it is.
 */
export function fromAmqp(
  properties: BasicProperties,
  exchange: string,
  routingKey: string,
  body: Buffer,
): MappedPublish {
  const headers: Record<string, string> = {};
  let own = 0;

  // In TEXT_PROPERTIES order, whatever order the properties came in.
  for (let bits = presentText(properties, BY_PROPERTY); bits !== 0; bits &= bits - 1) {
    const bit = lowestBit(bits);
    const [property, header] = TEXT_PROPERTIES[bit];
    const value = properties[property];
    if (value !== undefined) {
      headers[header] = value;
      own |= 1 << bit;
    }
  }
  if (properties.timestamp !== undefined) {
    headers.timestamp = properties.timestamp.toString();
    own |= TIMESTAMP_BIT;
  }
  if (properties.deliveryMode !== undefined) {
    headers['delivery-mode'] = String(properties.deliveryMode);
    own |= DELIVERY_MODE_BIT;
  }
  let ownHeaders: readonly string[];
  if (properties.headers !== undefined && properties.headers.size > 0) {
    ownHeaders = withTable(headers, own, properties.headers);
  } else {
    ownHeaders = ownHeadersByBits.get(own) ?? rememberOwnHeaders(own);
  }
  headers[EXCHANGE_HEADER] = exchange;
  headers[ROUTING_KEY_HEADER] = routingKey;
  const priority = properties.priority ?? 0;
  if (priority > MAX_PRIORITY) {
    headers[PRIORITY_HEADER] = String(priority);
    ownHeaders = [...ownHeaders, PRIORITY_HEADER];
  }

  // An id the broker would refuse is left out rather than failing the
  // other publishes batched with this one.
  const id = headers[ID_HEADER];
  return {
    id: id !== undefined && id.length >= 1 && id.length <= MAX_ID_LENGTH ? id : undefined,
    body,
    headers,
    ownHeaders,
    // AMQP priorities go to 255; Usher's stop at 9, and higher is higher.
    priority: Math.min(priority, MAX_PRIORITY),
    ttlMs: expirationOf(properties.expiration),
  };
}

/**
 * The priority PRIORITY_HEADER holds, 0 when none (or not one AMQP has).
 * Only a message stored as a 9 can have been published above it: read
 * from any, the header of an HTTP producer showed AMQP consumers a
 * priority nobody published (breaker).
 */
function publishedPriority(headers: Record<string, string>, stored: number): number {
  const text = headers[PRIORITY_HEADER];
  if (text === undefined || stored !== MAX_PRIORITY) return 0;
  const value = Number(text);
  return Number.isInteger(value) && value <= MAX_AMQP_PRIORITY ? value : 0;
}

/** The header names `own` stands for, in the order fromAmqp writes them. */
function ownHeaderNames(own: number): string[] {
  const names: string[] = [];
  for (let bits = own & (TIMESTAMP_BIT - 1); bits !== 0; bits &= bits - 1) {
    names.push(TEXT_PROPERTIES[lowestBit(bits)][1]);
  }
  if ((own & TIMESTAMP_BIT) !== 0) names.push('timestamp');
  if ((own & DELIVERY_MODE_BIT) !== 0) names.push('delivery-mode');
  return names;
}

function rememberOwnHeaders(own: number): readonly string[] {
  const names = Object.freeze([...ownHeaderNames(own), EXCHANGE_HEADER, ROUTING_KEY_HEADER]);
  ownHeadersByBits.set(own, names);
  return names;
}

/**
 * Writes the text values of a headers table, and the whole table typed,
 * into `headers`; answers the own headers, less those the table took.
 */
function withTable(
  headers: Record<string, string>,
  own: number,
  table: FieldTable,
): string[] {
  const ownHeaders = ownHeaderNames(own);
  for (const [name, value] of table) {
    if (value.type !== 'S' || typeof value.value !== 'string') continue;
    // An entry named as a property's header (user-id, content-type...)
    // stays in the typed table only, a header to AMQP consumers as in
    // RabbitMQ. As a text header it came back as that property: a
    // publisher logged in as guest showed consumers user-id 'root'
    // (breaker), past the check of the property itself (user-id.ts);
    // one named PRIORITY_HEADER came back as the priority (breaker).
    if (PROPERTY_HEADERS.has(name)) continue;
    headers[name] = value.value;
  }
  headers[TYPED_HEADERS] = encodeTable(table).toString('base64');
  ownHeaders.push(TYPED_HEADERS, EXCHANGE_HEADER, ROUTING_KEY_HEADER);
  return ownHeaders;
}

/**
 * Refuses a headers table the decoder stopped reading (content.ts
 * HEADERS_BUDGET): past 256 entries, as checkTableLimits would, or past
 * MAX_TABLE_VALUES values with those nested in arrays and tables. Nothing
 * of such a table is kept, so it can be neither routed on nor returned:
 * this comes before routing.
 */
export function checkTableRead(table: FieldTable): void {
  if (table === TOO_MANY_ENTRIES) checkHeaderCount(MAX_HEADERS + 1, 'headers', true);
  if (table === TOO_MANY_VALUES) {
    throw new InvalidArgumentError(
      'headers',
      `headers hold more than ${MAX_TABLE_VALUES} values, counting those ` +
        'nested in arrays and tables',
    );
  }
}

/**
 * Refuses a headers table over the publisher's limits: 256 entries, and
 * 64 KiB of names and values, a text or byte value counted by its bytes
 * and any other value by its encoded size.
 */
export function checkTableLimits(table: FieldTable): void {
  checkHeaderCount(table.size, 'headers');
  let bytes = 0;
  for (const [name, value] of table) {
    bytes += Buffer.byteLength(name);
    if (value.type === 'S' || value.type === 'x') {
      const raw = value.value;
      bytes += typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length;
    } else {
      bytes += valueSize(value, `headers.${name}`);
    }
  }
  checkHeaderBytes(bytes, 'headers');
}

/**
 * AMQP properties for a message, whichever protocol published it. Runs
 * once per delivery: no table is made for a message without headers.
 */
export function toAmqp(
  headers: Record<string, string>,
  priority: number,
  extra?: FieldTable,
): BasicProperties {
  const properties: BasicProperties = {};
  // Only what the publisher gave comes back: a priority above 0, and a
  // delivery mode it set.
  if (priority > 0) properties.priority = priority;
  const published = publishedPriority(headers, priority);
  if (published > priority) properties.priority = published;
  // A producer over HTTP may set these headers to anything. One that does
  // not fit its AMQP property (a short string of 255 bytes, a u64) travels
  // as a text header of the same name instead: unencodable, it would close
  // the consumer's channel on every redelivery.
  let table = typedHeadersOf(headers);
  for (let bits = presentText(headers, BY_HEADER); bits !== 0; bits &= bits - 1) {
    const [property, header] = TEXT_PROPERTIES[lowestBit(bits)];
    const value = headers[header];
    if (value === undefined) continue;
    if (fitsShortString(value)) properties[property] = value;
    else (table ??= new Map()).set(header, { type: 'S', value });
  }
  const timestamp = headers.timestamp;
  if (timestamp !== undefined && /^\d{1,20}$/.test(timestamp) && BigInt(timestamp) <= MAX_U64) {
    properties.timestamp = BigInt(timestamp);
  } else if (timestamp !== undefined) {
    (table ??= new Map()).set('timestamp', { type: 'S', value: timestamp });
  }
  const mode = headers['delivery-mode'];
  if (mode !== undefined) properties.deliveryMode = mode === '1' ? 1 : 2;

  for (const name in headers) {
    // Usher's own x-usher-* headers are for HTTP readers; AMQP consumers
    // get the same facts as x-death.
    if (PROPERTY_HEADERS.has(name) || name.startsWith('x-usher-') || table?.has(name)) continue;
    // An AMQP field name is a short string: a longer header name from an
    // HTTP producer cannot be carried, and is left out for AMQP consumers.
    if (!fitsShortString(name)) continue;
    (table ??= new Map()).set(name, { type: 'S', value: headers[name] });
  }
  if (extra !== undefined) {
    for (const [name, value] of extra) (table ??= new Map()).set(name, value);
  }
  if (table !== undefined && table.size > 0) properties.headers = table;
  return properties;
}

const MAX_U64 = 2n ** 64n - 1n;

/** A UTF-16 code unit is at most 3 bytes of UTF-8: short text needs no count. */
function fitsShortString(text: string): boolean {
  return text.length <= 85 || (text.length <= 255 && Buffer.byteLength(text) <= 255);
}

/** The typed table an AMQP publisher sent, if any (a fresh Map). */
export function typedHeadersOf(
  headers: Record<string, string>,
): Map<string, FieldValue> | undefined {
  const encoded = headers[TYPED_HEADERS];
  if (encoded === undefined) return undefined;
  try {
    // Within the budget a publish's table was read with: a producer over
    // HTTP could otherwise make every delivery decode 48 KiB of values.
    const table = decodeTable(Buffer.from(encoded, 'base64'), HEADERS_BUDGET);
    return table === TOO_MANY_ENTRIES || table === TOO_MANY_VALUES ? undefined : new Map(table);
  } catch {
    // Written by a producer over HTTP, not by us: its text headers stand.
    return undefined;
  }
}

/** `headers` with `table` (typedHeadersOf's, changed) less `without` as its typed table. */
export function withTypedHeaders(
  headers: Record<string, string>,
  table: Map<string, FieldValue> | undefined,
  without: string,
): Record<string, string> {
  if (table === undefined || !table.has(without)) return headers;
  const rest = new Map(table);
  rest.delete(without);
  const changed = { ...headers };
  if (rest.size > 0) changed[TYPED_HEADERS] = encodeTable(rest).toString('base64');
  else delete changed[TYPED_HEADERS];
  return changed;
}

/** The `expiration` property: a TTL in ms as decimal text (RabbitMQ). */
function expirationOf(expiration: string | undefined): number | undefined {
  if (expiration === undefined) return undefined;
  if (!/^\d{1,10}$/.test(expiration)) {
    throw preconditionFailed(`invalid expiration '${expiration}'`);
  }
  // Usher's TTLs start at 1 ms; RabbitMQ's 0 means "deliver now or drop".
  return Math.max(1, Number(expiration));
}

/**
 * Usher settings from queue.declare arguments: RabbitMQ's own where Usher
 * has the feature, `x-usher-*` for Usher's. Arguments Usher does not have
 * are refused rather than silently ignored, so a user relying on one
 * learns at declare time.
 */
export function settingsFromArguments(args: FieldTable): QueueSettingsInput {
  const settings: QueueSettingsInput = {};
  const backoff: NonNullable<QueueSettingsInput['backoff']> = {};

  for (const [name, field] of args) {
    const value = plainValue(field);
    switch (name) {
      case 'x-queue-type':
        if (value !== 'classic' && value !== 'quorum') refuse(name, value);
        break;
      case 'x-queue-mode':
      case 'x-queue-version':
      case 'x-queue-master-locator':
      case 'x-queue-leader-locator':
      case 'x-quorum-initial-group-size':
      case 'x-max-in-memory-length':
      case 'x-max-in-memory-bytes':
      case 'x-dead-letter-strategy':
        checkHint(name, value);
        break;
      case 'x-max-priority':
        // Every Usher queue has priorities 0 to 9; nothing to set.
        integer(name, value, 0, 255);
        break;
      case 'x-message-ttl':
        settings.messageTtlMs = Math.max(1, integer(name, value, 0, 2 ** 32 - 1));
        break;
      case 'x-delivery-limit':
        // RabbitMQ counts redeliveries; Usher counts deliveries.
        settings.maxAttempts = integer(name, value, 0, 1_000_000) + 1;
        break;
      case 'x-max-length':
        settings.maxLength = integer(name, value, 0, Number.MAX_SAFE_INTEGER);
        break;
      case 'x-max-length-bytes':
        settings.maxBytes = integer(name, value, 0, Number.MAX_SAFE_INTEGER);
        break;
      case 'x-overflow':
        settings.overflow = overflowOf(name, value);
        break;
      case 'x-usher-overflow':
        // Usher's third policy, which RabbitMQ does not have.
        if (value !== 'reject-lowest-priority') refuse(name, value);
        settings.overflow = 'reject-lowest-priority';
        break;
      case 'x-usher-sheddable':
        settings.sheddable = value === true;
        break;
      case 'x-usher-fifo':
        settings.fifo = value === true;
        break;
      case 'x-usher-max-attempts':
        settings.maxAttempts = integer(name, value, 0, 1_000_000);
        break;
      case 'x-usher-visibility-timeout':
        settings.visibilityTimeoutMs = integer(name, value, 1, 24 * 3_600_000);
        break;
      case 'x-usher-dedup-window':
        settings.dedupWindowMs = integer(name, value, 0, 24 * 3_600_000);
        break;
      case 'x-usher-backoff-initial':
        backoff.initialMs = integer(name, value, 0, 24 * 3_600_000);
        break;
      case 'x-usher-backoff-max':
        backoff.maxMs = integer(name, value, 0, 24 * 3_600_000);
        break;
      case 'x-usher-backoff-multiplier':
        backoff.multiplier = number(name, value, 1, 100);
        break;
      case 'x-usher-backoff-jitter':
        backoff.jitter = number(name, value, 0, 1);
        break;
      default:
        // Dead-letter exchanges, x-expires and single active consumers
        // are the AMQP adapter's own (queue-features.ts).
        if (FEATURE_ARGUMENTS.has(name)) break;
        refuse(name, value);
    }
  }
  if (Object.keys(backoff).length > 0) settings.backoff = backoff;
  // RabbitMQ's default overflow is drop-head; Usher's (over HTTP) is
  // reject-publish, which loses nothing silently. An AMQP declare gets
  // RabbitMQ's default, as its users expect.
  const limited = settings.maxLength !== undefined || settings.maxBytes !== undefined;
  if (limited && settings.overflow === undefined) settings.overflow = 'drop-oldest';
  return settings;
}

/**
 * RabbitMQ's x-overflow values. reject-publish-dlx refuses the newcomer
 * (basic.nack) and the broker dead-letters it through the queue's
 * x-dead-letter-exchange (dead-letter-exchange.ts), reason `maxlen`.
 */
function overflowOf(name: string, value: unknown): OverflowPolicy {
  if (value === 'reject-publish') return 'reject-publish';
  if (value === 'reject-publish-dlx') return 'reject-publish-dlx';
  if (value === 'drop-head') return 'drop-oldest';
  return refuse(name, value);
}

/**
 * RabbitMQ's arguments about where and how a queue keeps its messages,
 * which change nothing a client sees: lazy or not, the index version,
 * where the leader goes, how many in memory, a quorum queue's size. Usher
 * has one way to keep a queue (hot in memory, the rest read back from the
 * log), so these are checked as RabbitMQ checks them and then have
 * nothing to set, beyond what a redeclare must repeat (queue-hints.ts);
 * refusing them kept applications written for RabbitMQ from starting.
 * `x-dead-letter-strategy` at-least-once is what Usher does anyway;
 * at-most-once promises less.
 */
function checkHint(name: string, value: unknown): void {
  const allowed: Record<string, readonly unknown[]> = {
    'x-queue-mode': ['default', 'lazy'],
    'x-queue-master-locator': ['client-local', 'min-masters', 'random'],
    // 3.10 and 3.11 take random and least-leaders; 3.12 adds balanced.
    'x-queue-leader-locator': ['client-local', 'random', 'least-leaders', 'balanced'],
    'x-dead-letter-strategy': ['at-most-once', 'at-least-once'],
  };
  if (name === 'x-queue-version') {
    const version = integer(name, value, 1, 2);
    if (version !== 1 && version !== 2) refuse(name, value);
  } else if (name === 'x-quorum-initial-group-size') {
    integer(name, value, 1, 1_000);
  } else if (name === 'x-max-in-memory-length' || name === 'x-max-in-memory-bytes') {
    integer(name, value, 0, Number.MAX_SAFE_INTEGER);
  } else if (!allowed[name].includes(value)) {
    throw preconditionFailed(`invalid arg '${name}' for queue: ${String(value)} is not one of ` +
      allowed[name].map((choice) => `'${String(choice)}'`).join(', '));
  }
}

function integer(name: string, value: unknown, min: number, max: number): number {
  return numeric(name, value, min, max, true);
}

function number(name: string, value: unknown, min: number, max: number): number {
  return numeric(name, value, min, max, false);
}

/** A numeric argument in range; AMQP longs arrive as bigints. */
function numeric(name: string, value: unknown, min: number, max: number, whole: boolean): number {
  const n = typeof value === 'bigint' ? Number(value) : value;
  const fits = typeof n === 'number' && (whole ? Number.isInteger(n) : Number.isFinite(n));
  if (!fits || n < min || n > max) {
    throw preconditionFailed(`invalid arg '${name}' for queue: ${String(value)} is not ` +
      `${whole ? 'an integer' : 'a number'} from ${min} to ${max}`);
  }
  return n;
}

function refuse(name: string, value: unknown): never {
  throw preconditionFailed(`arg '${name}' ` +
    `(${String(value)}) is not supported by Usher, which refuses what it cannot honour ` +
    '(the README lists the arguments it takes)');
}
