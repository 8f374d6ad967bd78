// Content header frames: what follows basic.publish, basic.deliver,
// basic.get-ok and basic.return, announcing the body's size and carrying
// the message properties.
//
//   [class-id u16][weight u16 = 0][body-size u64][flags u16][properties]
//
// Bit 15 of the flags is the first property (content-type), bit 2 the
// fourteenth (cluster-id); only present properties are on the wire, in
// flag order. Bit 0 set means another flags word follows (0-9-1 4.2.6.1);
// basic has no properties beyond the first word, so any further word must
// be empty.

import { MAX_HEADERS } from '../broker/checks.js';
import { CLASS } from './constants.js';
import {
  AmqpEncodeError,
  BodyTooLargeError,
  FrameError,
  NotImplementedError,
} from './errors.js';
import {
  type FieldTable,
  MAX_TABLE_VALUES,
  type TableBudget,
  readTable,
  tableSize,
  writeTable,
} from './field-table.js';
import {
  Reader,
  checkInteger,
  shortstrSize,
  writeSafeU64,
  writeShortstr,
} from './wire.js';

export interface BasicProperties {
  contentType?: string;
  contentEncoding?: string;
  headers?: FieldTable;
  /** 1 transient, 2 persistent. */
  deliveryMode?: number;
  priority?: number;
  correlationId?: string;
  replyTo?: string;
  /** Per-message TTL in milliseconds, as decimal text. */
  expiration?: string;
  messageId?: string;
  /** Seconds since the epoch; a u64 on the wire. */
  timestamp?: bigint;
  type?: string;
  userId?: string;
  appId?: string;
  clusterId?: string;
}

export interface ContentHeader {
  classId: number;
  /** Body bytes to follow in body frames; at most MAX_SAFE_INTEGER. */
  bodySize: number;
  properties: BasicProperties;
}

type PropertyKind = 'shortstr' | 'table' | 'octet' | 'timestamp';

/** In flag order: index i is flag bit 15 - i. */
const PROPERTIES: readonly (readonly [keyof BasicProperties, PropertyKind])[] =
  [
    ['contentType', 'shortstr'],
    ['contentEncoding', 'shortstr'],
    ['headers', 'table'],
    ['deliveryMode', 'octet'],
    ['priority', 'octet'],
    ['correlationId', 'shortstr'],
    ['replyTo', 'shortstr'],
    ['expiration', 'shortstr'],
    ['messageId', 'shortstr'],
    ['timestamp', 'timestamp'],
    ['type', 'shortstr'],
    ['userId', 'shortstr'],
    ['appId', 'shortstr'],
    ['clusterId', 'shortstr'],
  ];

/**
 * A publisher's headers are read up to its limit of entries
 * (broker/checks.ts) and no further: past it the publish is refused
 * (mapping.ts checkTableRead), so the rest is skipped unread, and what a
 * publish costs to decode is bounded by the limit, not by what was sent.
 */
export const HEADERS_BUDGET: TableBudget = {
  entries: MAX_HEADERS,
  values: MAX_TABLE_VALUES,
  over: 'skip',
};

/**
 * A delivery's headers, read by a client: all of them, as frame-max
 * bounds them. The broker adds its own (x-death, x-delivery-count) to a
 * publisher's, so they may pass the publisher's limits.
 */
export const DELIVERY_HEADERS_BUDGET: TableBudget = {
  entries: Infinity,
  values: Infinity,
  over: 'throw',
};

/** Flag bits basic does not define: bit 1 (bit 0 is continuation). */
const UNKNOWN_FLAGS = 0x0002;

export interface ContentHeaderOptions {
  /** Larger bodies are refused with BodyTooLargeError (406, channel). */
  maxBodySize?: number;
  /** The method the content belongs to, named in errors. */
  classId?: number;
  methodId?: number;
  /** How much of the headers table to read; HEADERS_BUDGET by default. */
  headersBudget?: TableBudget;
}

/**
 * The one reader decodeContentHeader reads with, as decodeMethod's
 * (methods.ts): headers are decoded one at a time, and a headers table
 * gets a reader of its own.
 */
const HEADER_READER = new Reader(Buffer.alloc(0));

/**
 * Decodes a content header frame's payload. Refuses a body size above
 * Number.MAX_SAFE_INTEGER with FRAME_ERROR (RabbitMQ, too, treats an
 * impossible size as a framing fault) and above `maxBodySize` with
 * BodyTooLargeError, before looking at the properties.
 */
export function decodeContentHeader(
  payload: Buffer,
  options: ContentHeaderOptions = {},
  start = 0,
  end = payload.length,
): ContentHeader {
  const r = HEADER_READER.reset(payload, start, end);
  r.context = 'content header';
  r.classId = options.classId ?? 0;
  r.methodId = options.methodId ?? 0;
  const classId = r.u16('class-id');
  r.u16('weight'); // unused, 0 by the spec; RabbitMQ ignores it too
  r.need(8, 'body-size');
  const high = payload.readUInt32BE(r.pos);
  const low = payload.readUInt32BE(r.pos + 4);
  r.pos += 8;
  const bodySize = high * 2 ** 32 + low;
  if (bodySize > Number.MAX_SAFE_INTEGER) {
    throw new FrameError(
      `content header body-size ${payload.readBigUInt64BE(r.pos - 8)} ` +
        `exceeds ${Number.MAX_SAFE_INTEGER}`,
      methodOf(options),
    );
  }
  const limit = options.maxBodySize ?? Number.MAX_SAFE_INTEGER;
  if (bodySize > limit) throw new BodyTooLargeError(bodySize, limit, methodOf(options));
  if (classId !== CLASS.basic) {
    throw new NotImplementedError(`content header for class ${classId}`, methodOf(options));
  }

  const properties = readProperties(r, options.headersBudget ?? HEADERS_BUDGET);
  if (r.left !== 0) {
    throw r.error(`${r.left} bytes left over after the properties`);
  }
  return { classId, bodySize, properties };
}

/** The method named in an error; made only when one is thrown. */
function methodOf(options: ContentHeaderOptions) {
  return { classId: options.classId, methodId: options.methodId };
}

/** Reads the flags words and the properties they announce. */
export function readProperties(
  r: Reader,
  headersBudget: TableBudget = HEADERS_BUDGET,
): BasicProperties {
  const flags = r.u16('property flags');
  let more = flags & 1;
  while (more !== 0) {
    const next = r.u16('property flags');
    if ((next & 0xfffe) !== 0) {
      throw r.error(
        `unknown property flags 0x${next.toString(16)} in a continuation word`,
      );
    }
    more = next & 1;
  }
  if ((flags & UNKNOWN_FLAGS) !== 0) {
    throw r.error(`unknown property flags 0x${flags.toString(16)}`);
  }

  const out: Record<string, unknown> = {};
  for (let i = 0; i < PROPERTIES.length; i++) {
    if ((flags & (0x8000 >>> i)) === 0) continue;
    const [key, kind] = PROPERTIES[i];
    switch (kind) {
      case 'shortstr':
        out[key] = r.shortstr(key);
        break;
      case 'octet':
        out[key] = r.u8(key);
        break;
      case 'table':
        out[key] = readTable(r, key, headersBudget);
        break;
      case 'timestamp':
        r.need(8, key);
        out[key] = r.buf.readBigUInt64BE(r.pos);
        r.pos += 8;
        break;
    }
  }
  return out as BasicProperties;
}

/** Flag bit of each property, with the name errors give it. */
const FLAG_OF = new Map<string, { bit: number; field: string }>(
  PROPERTIES.map(([key], i) => [key, { bit: 0x8000 >>> i, field: `properties.${key}` }]),
);

/**
 * Flags of the properties present. Walks the keys the object has (a
 * message has a few of the fourteen) instead of looking up all fourteen:
 * this runs twice for every message delivered.
 */
function presentFlags(values: Record<string, unknown>): number {
  let flags = 0;
  for (const key in values) {
    if (values[key] === undefined) continue;
    const flag = FLAG_OF.get(key);
    if (flag !== undefined) flags |= flag.bit;
  }
  return flags;
}

/** Index in PROPERTIES of the first (highest) flag set in `flags`. */
const firstProperty = (flags: number) => Math.clz32(flags) - 16;

/** Bytes of the flags word and present properties; validates them. */
export function propertiesSize(properties: BasicProperties): number {
  const values = properties as Record<string, unknown>;
  let size = 2;
  for (let flags = presentFlags(values); flags !== 0; ) {
    const i = firstProperty(flags);
    flags &= ~(0x8000 >>> i);
    const [key, kind] = PROPERTIES[i];
    const value = values[key];
    const field = FLAG_OF.get(key)!.field;
    switch (kind) {
      case 'shortstr':
        size += shortstrSize(value as string, field);
        break;
      case 'octet':
        checkInteger(value as number, 0, 0xff, field);
        size += 1;
        break;
      case 'table':
        size += tableSize(value as FieldTable, field);
        break;
      case 'timestamp':
        if (typeof value !== 'bigint' || value < 0n || value >= 2n ** 64n) {
          throw new AmqpEncodeError(
            field,
            `expected a u64 bigint, got ${String(value)}`,
          );
        }
        size += 8;
        break;
    }
  }
  return size;
}

/** Writes properties sized by propertiesSize; returns the next offset. */
export function writeProperties(
  buf: Buffer,
  offset: number,
  properties: BasicProperties,
): number {
  const values = properties as Record<string, unknown>;
  const present = presentFlags(values);
  let at = offset + 2;
  for (let flags = present; flags !== 0; ) {
    const i = firstProperty(flags);
    flags &= ~(0x8000 >>> i);
    const [key, kind] = PROPERTIES[i];
    const value = values[key];
    switch (kind) {
      case 'shortstr':
        at = writeShortstr(buf, at, value as string);
        break;
      case 'octet':
        buf[at++] = value as number;
        break;
      case 'table':
        at = writeTable(buf, at, value as FieldTable);
        break;
      case 'timestamp':
        at = buf.writeBigUInt64BE(value as bigint, at);
        break;
    }
  }
  buf.writeUInt16BE(present, offset);
  return at;
}

/**
 * Flags and properties in a Buffer of their own. Store this with a message
 * to deliver it many times without encoding its headers again: the frame
 * encoder takes it in place of a BasicProperties.
 */
export function encodeProperties(properties: BasicProperties): Buffer {
  const buf = Buffer.allocUnsafe(propertiesSize(properties));
  writeProperties(buf, 0, properties);
  return buf;
}

/** Properties as objects or as bytes from encodeProperties. */
export type PropertiesInput = BasicProperties | Buffer;

/** Size of a content header payload (class, weight, size, properties). */
export function contentHeaderSize(properties: PropertiesInput): number {
  return (
    12 +
    (Buffer.isBuffer(properties)
      ? properties.length
      : propertiesSize(properties))
  );
}

/** Writes a basic content header payload; returns the next offset. */
export function writeContentHeader(
  buf: Buffer,
  offset: number,
  bodySize: number,
  properties: PropertiesInput,
): number {
  buf.writeUInt16BE(CLASS.basic, offset);
  buf.writeUInt16BE(0, offset + 2);
  writeSafeU64(buf, offset + 4, bodySize);
  if (Buffer.isBuffer(properties)) {
    return offset + 12 + properties.copy(buf, offset + 12);
  }
  return writeProperties(buf, offset + 12, properties);
}

/** A whole content header payload in a Buffer of its own. */
export function encodeContentHeader(
  bodySize: number,
  properties: PropertiesInput,
): Buffer {
  checkInteger(bodySize, 0, Number.MAX_SAFE_INTEGER, 'bodySize');
  const buf = Buffer.allocUnsafe(contentHeaderSize(properties));
  writeContentHeader(buf, 0, bodySize, properties);
  return buf;
}
