// AMQP field tables and arrays in RabbitMQ's dialect (see the 0-9-1
// errata on rabbitmq.com). Values keep their wire type, so a table read
// from one client is written to another byte for byte: `x-death` stays
// an array of tables whose `count` is a 'l' and whose `time` is a 'T'.
//
//   table: [size u32][entry]*    entry: [name shortstr][type u8][value]
//   array: [size u32][type u8 value]*
//
//   t bool (u8)   b int8    B uint8     s int16   u uint16   I int32
//   i uint32      l int64   f float32   d float64 D scale u8 + uint32
//   S longstr     x bytes   T u64 secs  A array   F table    V void
//
// 'L' (the spec's int64) is read as 'l', as RabbitMQ does.

import { isUtf8 } from 'node:buffer';

import { AmqpEncodeError } from './errors.js';
import { Reader, checkInteger, shortstrSize, writeShortstr } from './wire.js';

/** Tables and arrays nest no deeper than this (x-death needs 3). */
export const MAX_FIELD_DEPTH = 32;

export type FieldValue =
  | { readonly type: 't'; readonly value: boolean }
  | {
      readonly type: 'b' | 'B' | 's' | 'u' | 'I' | 'i' | 'f' | 'd';
      readonly value: number;
    }
  | { readonly type: 'l' | 'T'; readonly value: bigint }
  /** The number is value / 10^scale. */
  | { readonly type: 'D'; readonly scale: number; readonly value: number }
  /** Text when the bytes are UTF-8, else the bytes themselves. */
  | { readonly type: 'S'; readonly value: string | Buffer }
  | { readonly type: 'x'; readonly value: Buffer }
  | { readonly type: 'A'; readonly value: readonly FieldValue[] }
  | { readonly type: 'F'; readonly value: FieldTable }
  | { readonly type: 'V'; readonly value: null };

export type FieldType = FieldValue['type'];

/** Entries in wire order. */
export type FieldTable = ReadonlyMap<string, FieldValue>;

export const EMPTY_TABLE: FieldTable = new Map();

/** JS values `tableFrom` can type on its own. */
export type PlainValue =
  | boolean
  | number
  | bigint
  | string
  | Buffer
  | Date
  | null
  | undefined
  | readonly PlainValue[]
  | { readonly [key: string]: PlainValue };

const INT_RANGES = {
  b: [-0x80, 0x7f],
  B: [0, 0xff],
  s: [-0x8000, 0x7fff],
  u: [0, 0xffff],
  I: [-0x8000_0000, 0x7fff_ffff],
  i: [0, 0xffff_ffff],
} as const;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

// ---- decoding ----------------------------------------------------------

/**
 * Values a table may hold at every depth (its entries, the entries of
 * tables inside it, the items of arrays). Frame-max alone bounds a table
 * by its bytes: 128 KiB (8 KiB before tune) holds some 60,000 one-byte
 * values, each decoded into an object, 6 to 9 ms of one frame. 1024 take
 * at worst 0.15 ms, near the 0.1 ms of the largest flat table that the
 * publisher's limits let through (256 entries, 64 KiB), and are far past
 * what clients send: some 20 in a client's properties, a few in a
 * declare's arguments, 10 or so for each death in x-death.
 */
export const MAX_TABLE_VALUES = 1024;

/** How much of one table the decoder reads before it stops. */
export interface TableBudget {
  /** Entries of the table itself, a name sent twice counted twice. */
  readonly entries: number;
  /** Values at every depth, its entries included (MAX_TABLE_VALUES). */
  readonly values: number;
  /**
   * Past either: 'throw' a SYNTAX_ERROR, as for a table nested too deep;
   * or 'skip' the rest of the table, unread, and answer TOO_MANY_ENTRIES
   * or TOO_MANY_VALUES for the caller to refuse as it sees fit.
   */
  readonly over: 'throw' | 'skip';
}

/** Method arguments and the tables inside a login. */
export const METHOD_TABLE_BUDGET: TableBudget = {
  entries: MAX_TABLE_VALUES,
  values: MAX_TABLE_VALUES,
  over: 'throw',
};

/**
 * What readTable answers, under a 'skip' budget, for a table with more
 * entries or more values than the budget. Empty, and told apart from a
 * decoded table by identity.
 */
export const TOO_MANY_ENTRIES: FieldTable = new Map();
export const TOO_MANY_VALUES: FieldTable = new Map();

/**
 * Values the table being read may still hold, at every depth. Decoding is
 * synchronous and a table is read by one readTable call at a time, so one
 * count serves every table: no budget object per message.
 */
let valuesLeft = 0;

/**
 * Reads a table (its u32 size first), within `budget`. A name seen twice
 * keeps its first value, the one RabbitMQ's lookups find.
 */
export function readTable(
  r: Reader,
  what: string,
  budget: TableBudget = METHOD_TABLE_BUDGET,
): FieldTable {
  const size = r.u32(what);
  r.need(size, what);
  // amqplib sends an empty headers table with every publish: one shared
  // empty table, not a Map per message.
  if (size === 0) return EMPTY_TABLE;
  const end = r.pos + size;
  const outerEnd = r.end;
  r.end = end;

  valuesLeft = budget.values;
  let entries = 0;
  const table = new Map<string, FieldValue>();
  while (r.pos < end && ++entries <= budget.entries && --valuesLeft >= 0) {
    const name = r.shortstr(`${what} field name`);
    const value = readValue(r, `${what}.${name}`, 0);
    if (!table.has(name)) table.set(name, value);
  }

  r.end = outerEnd;
  const tooMany =
    entries > budget.entries ? 'entries' : valuesLeft < 0 ? 'values' : null;
  if (tooMany === null) return table;
  // Stopped short: the rest is left unread, whatever it holds.
  r.pos = end;
  if (budget.over === 'skip') {
    return tooMany === 'entries' ? TOO_MANY_ENTRIES : TOO_MANY_VALUES;
  }
  throw r.error(
    tooMany === 'entries'
      ? `${what} has more than ${budget.entries} entries`
      : `${what} holds more than ${budget.values} values, nested ones included`,
  );
}

// Tables and arrays inside a table take from its valuesLeft. One that
// runs out stops where it is and skips to its end; the tables around it
// then stop in turn, so that readTable finds itself short.
function readNestedTable(r: Reader, what: string, depth: number): FieldTable {
  const size = r.u32(what);
  r.need(size, what);
  const end = r.pos + size;
  const outerEnd = r.end;
  r.end = end;

  const table = new Map<string, FieldValue>();
  while (r.pos < end && --valuesLeft >= 0) {
    const name = r.shortstr(`${what} field name`);
    const value = readValue(r, `${what}.${name}`, depth);
    if (!table.has(name)) table.set(name, value);
  }

  r.end = outerEnd;
  r.pos = end;
  return table;
}

function readArray(r: Reader, what: string, depth: number): FieldValue[] {
  const size = r.u32(what);
  r.need(size, what);
  const end = r.pos + size;
  const outerEnd = r.end;
  r.end = end;

  const items: FieldValue[] = [];
  while (r.pos < end && --valuesLeft >= 0)
    items.push(readValue(r, `${what}[${items.length}]`, depth));

  r.end = outerEnd;
  r.pos = end;
  return items;
}

function readValue(r: Reader, what: string, depth: number): FieldValue {
  const type = r.u8(`${what} type`);
  const buf = r.buf;
  switch (type) {
    case 0x74 /* t */:
      return { type: 't', value: r.u8(what) !== 0 };
    case 0x62 /* b */:
      r.need(1, what);
      return { type: 'b', value: buf.readInt8(r.pos++) };
    case 0x42 /* B */:
      return { type: 'B', value: r.u8(what) };
    case 0x73 /* s */:
      r.need(2, what);
      r.pos += 2;
      return { type: 's', value: buf.readInt16BE(r.pos - 2) };
    case 0x75 /* u */:
      return { type: 'u', value: r.u16(what) };
    case 0x49 /* I */:
      r.need(4, what);
      r.pos += 4;
      return { type: 'I', value: buf.readInt32BE(r.pos - 4) };
    case 0x69 /* i */:
      return { type: 'i', value: r.u32(what) };
    case 0x6c /* l */:
    case 0x4c /* L */:
      r.need(8, what);
      r.pos += 8;
      return { type: 'l', value: buf.readBigInt64BE(r.pos - 8) };
    case 0x66 /* f */:
      r.need(4, what);
      r.pos += 4;
      return { type: 'f', value: buf.readFloatBE(r.pos - 4) };
    case 0x64 /* d */:
      r.need(8, what);
      r.pos += 8;
      return { type: 'd', value: buf.readDoubleBE(r.pos - 8) };
    case 0x44 /* D */: {
      const scale = r.u8(what);
      return { type: 'D', scale, value: r.u32(what) };
    }
    case 0x53 /* S */: {
      const length = r.u32(what);
      r.need(length, what);
      const start = r.pos;
      r.pos += length;
      return { type: 'S', value: longstrValue(buf, start, r.pos) };
    }
    case 0x78 /* x */:
      return { type: 'x', value: r.longstr(what) };
    case 0x54 /* T */:
      r.need(8, what);
      r.pos += 8;
      return { type: 'T', value: buf.readBigUInt64BE(r.pos - 8) };
    case 0x56 /* V */:
      return { type: 'V', value: null };
    case 0x41 /* A */:
    case 0x46 /* F */:
      if (depth >= MAX_FIELD_DEPTH) {
        throw r.error(`${what} nests deeper than ${MAX_FIELD_DEPTH} levels`);
      }
      return type === 0x41
        ? { type: 'A', value: readArray(r, what, depth + 1) }
        : { type: 'F', value: readNestedTable(r, what, depth + 1) };
    default:
      throw r.error(
        `${what} has unknown field type 0x${type.toString(16)}` +
          (type >= 0x20 && type < 0x7f
            ? ` ('${String.fromCharCode(type)}')`
            : ''),
      );
  }
}

// Text if the bytes are UTF-8 (so they re-encode to the same bytes), else
// a copy of the bytes.
function longstrValue(
  buf: Buffer,
  start: number,
  end: number,
): string | Buffer {
  const bytes = buf.subarray(start, end);
  return isUtf8(bytes) ? bytes.toString('utf8') : Buffer.from(bytes);
}

/** Decodes a whole buffer holding one table (size prefix included). */
export function decodeTable(
  buf: Buffer,
  budget: TableBudget = METHOD_TABLE_BUDGET,
): FieldTable {
  const r = new Reader(buf);
  const table = readTable(r, 'table', budget);
  if (r.left !== 0) throw r.error(`${r.left} bytes after the table`);
  return table;
}

// ---- encoding ----------------------------------------------------------

/** Encoded size of a table, size prefix included; validates as it goes. */
export function tableSize(table: FieldTable, field: string, depth = 0): number {
  if (!(table instanceof Map)) {
    throw new AmqpEncodeError(field, 'a field table must be a Map');
  }
  let size = 4;
  for (const [name, value] of table) {
    size += shortstrSize(name, `${field} field name`);
    size += valueSize(value, `${field}.${name}`, depth);
  }
  return size;
}

/** Encoded size of one value, type tag included; validates as it goes. */
export function valueSize(v: FieldValue, field: string, depth = 0): number {
  switch (v.type) {
    case 't':
      if (typeof v.value !== 'boolean') {
        throw new AmqpEncodeError(field, 'expected a boolean');
      }
      return 2;
    case 'b':
    case 'B':
    case 's':
    case 'u':
    case 'I':
    case 'i': {
      const [min, max] = INT_RANGES[v.type];
      checkInteger(v.value, min, max, field);
      return v.type === 'b' || v.type === 'B'
        ? 2
        : v.type === 's' || v.type === 'u'
          ? 3
          : 5;
    }
    case 'f':
    case 'd':
      if (typeof v.value !== 'number') {
        throw new AmqpEncodeError(field, 'expected a number');
      }
      return v.type === 'f' ? 5 : 9;
    case 'l':
    case 'T': {
      const [min, max] =
        v.type === 'l' ? [INT64_MIN, INT64_MAX] : [0n, UINT64_MAX];
      if (typeof v.value !== 'bigint' || v.value < min || v.value > max) {
        throw new AmqpEncodeError(
          field,
          `expected a bigint in [${min}, ${max}], got ${String(v.value)}`,
        );
      }
      return 9;
    }
    case 'D':
      checkInteger(v.scale, 0, 0xff, `${field}.scale`);
      checkInteger(v.value, 0, 0xffff_ffff, field);
      return 6;
    case 'S':
      return 5 + byteLength(v.value, field);
    case 'x':
      if (!Buffer.isBuffer(v.value)) {
        throw new AmqpEncodeError(field, 'expected a Buffer');
      }
      return 5 + v.value.length;
    case 'V':
      return 1;
    case 'A':
    case 'F': {
      if (depth >= MAX_FIELD_DEPTH) {
        throw new AmqpEncodeError(
          field,
          `nests deeper than ${MAX_FIELD_DEPTH} levels (a cycle?)`,
        );
      }
      if (v.type === 'F') return 1 + tableSize(v.value, field, depth + 1);
      if (!Array.isArray(v.value)) {
        throw new AmqpEncodeError(field, 'an array value must be an Array');
      }
      let size = 5;
      for (let i = 0; i < v.value.length; i++) {
        size += valueSize(v.value[i], `${field}[${i}]`, depth + 1);
      }
      return size;
    }
    default:
      throw new AmqpEncodeError(
        field,
        `unknown field type ${JSON.stringify((v as { type: unknown }).type)}`,
      );
  }
}

function byteLength(value: string | Buffer, field: string): number {
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (Buffer.isBuffer(value)) return value.length;
  throw new AmqpEncodeError(field, 'expected a string or a Buffer');
}

/** Writes a table sized by tableSize; returns the offset after it. */
export function writeTable(
  buf: Buffer,
  offset: number,
  table: FieldTable,
): number {
  let at = offset + 4;
  for (const [name, value] of table) {
    at = writeShortstr(buf, at, name);
    at = writeValue(buf, at, value);
  }
  buf.writeUInt32BE(at - offset - 4, offset);
  return at;
}

function writeValue(buf: Buffer, offset: number, v: FieldValue): number {
  buf[offset] = v.type.charCodeAt(0);
  const at = offset + 1;
  switch (v.type) {
    case 't':
      buf[at] = v.value ? 1 : 0;
      return at + 1;
    case 'b':
      return buf.writeInt8(v.value, at);
    case 'B':
      return buf.writeUInt8(v.value, at);
    case 's':
      return buf.writeInt16BE(v.value, at);
    case 'u':
      return buf.writeUInt16BE(v.value, at);
    case 'I':
      return buf.writeInt32BE(v.value, at);
    case 'i':
      return buf.writeUInt32BE(v.value, at);
    case 'l':
      return buf.writeBigInt64BE(v.value, at);
    case 'T':
      return buf.writeBigUInt64BE(v.value, at);
    case 'f':
      return buf.writeFloatBE(v.value, at);
    case 'd':
      return buf.writeDoubleBE(v.value, at);
    case 'D':
      buf[at] = v.scale;
      return buf.writeUInt32BE(v.value, at + 1);
    case 'S':
    case 'x': {
      const length =
        typeof v.value === 'string'
          ? buf.write(v.value, at + 4)
          : v.value.copy(buf, at + 4);
      buf.writeUInt32BE(length, at);
      return at + 4 + length;
    }
    case 'V':
      return at;
    case 'F':
      return writeTable(buf, at, v.value);
    case 'A': {
      let end = at + 4;
      for (const item of v.value) end = writeValue(buf, end, item);
      buf.writeUInt32BE(end - at - 4, at);
      return end;
    }
  }
}

/** One table in a Buffer of its own, size prefix included. */
export function encodeTable(table: FieldTable): Buffer {
  const buf = Buffer.allocUnsafe(tableSize(table, 'table'));
  writeTable(buf, 0, table);
  return buf;
}

// ---- plain JS values ---------------------------------------------------

/**
 * Types plain JS values the way most clients do: boolean 't', integer
 * 'I' (or 'l' past 32 bits), other numbers 'd', bigint 'l', string 'S',
 * Buffer 'x', Date 'T', null/undefined 'V', arrays 'A', objects 'F'.
 *
 * @example tableFrom({ 'x-max-priority': 10, 'x-queue-type': 'classic' })
 */
export function tableFrom(record: {
  readonly [key: string]: PlainValue;
}): FieldTable {
  return new Map(Object.entries(record).map(([k, v]) => [k, valueFrom(v)]));
}

export function valueFrom(value: PlainValue): FieldValue {
  if (value === null || value === undefined) return { type: 'V', value: null };
  if (typeof value === 'boolean') return { type: 't', value };
  if (typeof value === 'bigint') return { type: 'l', value };
  if (typeof value === 'string') return { type: 'S', value };
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return { type: 'd', value };
    const int32 = value >= -0x8000_0000 && value <= 0x7fff_ffff;
    if (int32) return { type: 'I', value };
    if (Number.isSafeInteger(value)) return { type: 'l', value: BigInt(value) };
    return { type: 'd', value };
  }
  if (Buffer.isBuffer(value)) return { type: 'x', value };
  if (value instanceof Date) {
    return { type: 'T', value: BigInt(Math.floor(value.getTime() / 1000)) };
  }
  if (Array.isArray(value)) return { type: 'A', value: value.map(valueFrom) };
  return {
    type: 'F',
    value: tableFrom(value as { [key: string]: PlainValue }),
  };
}

/**
 * The JS value of a field, dropping its wire type: numbers, bigints for
 * 'l' and 'T', strings or Buffers, arrays and plain objects.
 */
export function plainValue(v: FieldValue): unknown {
  switch (v.type) {
    case 'D':
      return v.value / 10 ** v.scale;
    case 'A':
      return v.value.map(plainValue);
    case 'F':
      return plainTable(v.value);
    default:
      return v.value;
  }
}

/** A table as a null-prototype object, so "__proto__" stays a key. */
export function plainTable(table: FieldTable): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (const [name, value] of table) out[name] = plainValue(value);
  return out;
}
