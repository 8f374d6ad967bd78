// Header and argument values as the routing layer sees them: the JS
// values the AMQP codec's plainTable() gives for a field table, and how
// they are compared, shown, keyed and written to a snapshot.
//
//   JS value                    field types it stands for
//   string                      'S' longstr (UTF-8 text)
//   number | bigint             every integer and float type, 'T' too
//   boolean                     't'
//   null | undefined            'V' void
//   Buffer | Uint8Array         'x' bytes, or an 'S' that is not UTF-8
//   Date                        'T' timestamp, in whole seconds
//   array                       'A'
//   Map | plain object          'F' nested table
//
// Comparison follows RabbitMQ's headers exchange, which compares the
// Erlang values and drops the wire types: integers of any width equal
// when their values do (1 == 1n), floats compare by value too, a string
// equals bytes with the same UTF-8 content, a timestamp equals the
// integer of its seconds. Arrays and tables compare element by element
// with the same rule (RabbitMQ keeps the inner types there; we do not).

import { PreconditionFailedError, SnapshotError } from './errors.js';

/** A field table as callers may give it. */
export type TableInput =
  | ReadonlyMap<string, unknown>
  | { readonly [key: string]: unknown };

/** A field table as stored: keys in insertion order, values imported. */
export type Table = ReadonlyMap<string, unknown>;

export const EMPTY_TABLE: Table = new Map();

/** Tables and arrays nest no deeper, as in the codec (x-death needs 3). */
const MAX_DEPTH = 32;

type Kind =
  | 'void'
  | 'boolean'
  | 'number'
  | 'string'
  | 'bytes'
  | 'array'
  | 'table'
  | 'unsupported';

function kindOf(v: unknown): Kind {
  switch (typeof v) {
    case 'string':
      return 'string';
    case 'number':
    case 'bigint':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'undefined':
      return 'void';
    case 'object': {
      if (v === null) return 'void';
      if (v instanceof Uint8Array) return 'bytes';
      if (v instanceof Date) {
        return Number.isNaN(v.getTime()) ? 'unsupported' : 'number';
      }
      if (Array.isArray(v)) return 'array';
      if (v instanceof Map) return 'table';
      const proto: unknown = Object.getPrototypeOf(v);
      return proto === Object.prototype || proto === null
        ? 'table'
        : 'unsupported';
    }
    default:
      return 'unsupported';
  }
}

// ---- reading tables of either shape --------------------------------------

/** Whether `table` has `key` as its own entry, void values included. */
export function tableHas(table: TableInput, key: string): boolean {
  return table instanceof Map
    ? table.has(key)
    : Object.hasOwn(table, key);
}

export function tableGet(table: TableInput, key: string): unknown {
  if (table instanceof Map) return table.get(key);
  return Object.hasOwn(table, key)
    ? (table as { readonly [key: string]: unknown })[key]
    : undefined;
}

function tableKeys(table: TableInput): Iterable<string> {
  return table instanceof Map ? table.keys() : Object.keys(table);
}

function tableSize(table: TableInput): number {
  return table instanceof Map ? table.size : Object.keys(table).length;
}

// ---- comparison ----------------------------------------------------------

/** Equality of two header values, RabbitMQ's way (see the top). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  const ka = kindOf(a);
  const kb = kindOf(b);

  switch (ka) {
    case 'void':
      return kb === 'void';
    case 'number':
      // number == bigint compares the mathematical values exactly.
      return kb === 'number' && numeric(a) == numeric(b);
    case 'string':
    case 'bytes':
      if (kb !== 'string' && kb !== 'bytes') return false;
      if (ka === 'string' && kb === 'string') return false;
      return bytesOf(a).equals(bytesOf(b));
    case 'array':
      return kb === 'array' && sameArray(a as unknown[], b as unknown[]);
    case 'table':
      return kb === 'table' && sameTable(a as TableInput, b as TableInput);
    default:
      return false;
  }
}

function sameArray(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (!sameValue(a[i], b[i])) return false;
  }
  return true;
}

/** Same keys, equal values; order does not count (RabbitMQ sorts). */
export function sameTable(a: TableInput, b: TableInput): boolean {
  if (tableSize(a) !== tableSize(b)) return false;
  for (const key of tableKeys(a)) {
    if (!tableHas(b, key)) return false;
    if (!sameValue(tableGet(a, key), tableGet(b, key))) return false;
  }
  return true;
}

function numeric(v: unknown): number | bigint {
  if (v instanceof Date) return BigInt(Math.floor(v.getTime() / 1000));
  return v as number | bigint;
}

function bytesOf(v: unknown): Buffer {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  const u8 = v as Uint8Array;
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

// ---- import and display --------------------------------------------------

/**
 * Checks a table given by a caller and copies it, so later changes to
 * the caller's object do not reach a stored exchange or binding. Nested
 * tables become Maps, bytes become Buffers, Dates become bigint seconds.
 * `owner` names the exchange or binding for the error message.
 */
export function importTable(
  input: TableInput | undefined,
  owner: string,
): Table {
  if (input === undefined) return EMPTY_TABLE;
  if (kindOf(input) !== 'table') {
    throw new PreconditionFailedError(
      `arguments for ${owner} must be a field table`,
    );
  }
  return importEntries(input, owner, '', 0);
}

function importEntries(
  input: TableInput,
  owner: string,
  prefix: string,
  depth: number,
): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const key of tableKeys(input)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    out.set(key, importValue(tableGet(input, key), owner, path, depth));
  }
  return out;
}

function importValue(
  v: unknown,
  owner: string,
  path: string,
  depth: number,
): unknown {
  const kind = kindOf(v);
  if ((kind === 'array' || kind === 'table') && depth >= MAX_DEPTH) {
    throw new PreconditionFailedError(
      `arg '${path}' for ${owner} nests deeper than ${MAX_DEPTH} levels`,
    );
  }
  switch (kind) {
    case 'void':
      return null;
    case 'number':
      return numeric(v);
    case 'bytes':
      return Buffer.from(v as Uint8Array);
    case 'array':
      return (v as unknown[]).map((item, i) =>
        importValue(item, owner, `${path}[${i}]`, depth + 1),
      );
    case 'table':
      return importEntries(v as TableInput, owner, path, depth + 1);
    case 'unsupported':
      throw new PreconditionFailedError(
        `arg '${path}' for ${owner} has a value of unsupported type ` +
          `'${typeof v === 'object' ? v?.constructor?.name : typeof v}'`,
      );
    default:
      return v;
  }
}

/** The type of a value as messages name it. */
export function typeName(v: unknown): string {
  const kind = kindOf(v);
  if (kind === 'number') {
    return typeof v === 'number' && !Number.isInteger(v) ? 'float' : 'integer';
  }
  return kind;
}

/** "the value 'x' of type 'string'", or "none", as RabbitMQ says it. */
export function describeValue(v: unknown, present = true): string {
  if (!present) return 'none';
  const kind = kindOf(v);
  let text: string;
  if (kind === 'string') text = v as string;
  else if (kind === 'bytes') text = `<${(v as Uint8Array).byteLength} bytes>`;
  else if (kind === 'array' || kind === 'table') {
    text = JSON.stringify(encodeValue(v));
  } else text = String(v);
  return `the value '${text}' of type '${typeName(v)}'`;
}

// ---- snapshot encoding ---------------------------------------------------
//
// JSON holds strings, booleans, null, finite numbers and arrays as they
// are. Everything else becomes a one-key object, which is unambiguous
// because a table itself is always one of these:
//
//   {"$bigint": "9007199254740993"}   {"$float": "NaN"}  (also -0, ±Infinity)
//   {"$bytes": "<base64>"}            {"$table": {"key": <value>, ...}}

export type EncodedValue =
  | null
  | boolean
  | string
  | number
  | EncodedValue[]
  | { $bigint: string }
  | { $float: string }
  | { $bytes: string }
  | { $table: EncodedTable };

export type EncodedTable = { [key: string]: EncodedValue };

/** Encodes an imported table; keys are sorted, so equal tables encode equal. */
export function encodeTable(table: TableInput): EncodedTable {
  const out: EncodedTable = Object.create(null);
  for (const key of [...tableKeys(table)].sort()) {
    out[key] = encodeValue(tableGet(table, key));
  }
  return out;
}

function encodeValue(v: unknown): EncodedValue {
  switch (kindOf(v)) {
    case 'void':
      return null;
    case 'number': {
      const n = numeric(v);
      if (typeof n === 'bigint') return { $bigint: n.toString() };
      if (Number.isFinite(n) && !Object.is(n, -0)) return n;
      return { $float: Object.is(n, -0) ? '-0' : String(n) };
    }
    case 'bytes':
      return { $bytes: bytesOf(v).toString('base64') };
    case 'array':
      return (v as unknown[]).map(encodeValue);
    case 'table':
      return { $table: encodeTable(v as TableInput) };
    default:
      return v as string | boolean;
  }
}

/** A key equal for bindings whose arguments are the same, types and all. */
export function tableKey(table: Table): string {
  return table.size === 0 ? '' : JSON.stringify(encodeTable(table));
}

export function decodeTable(enc: unknown, path: string, depth = 0): Table {
  if (typeof enc !== 'object' || enc === null || Array.isArray(enc)) {
    throw new SnapshotError(path, 'is not an object');
  }
  const out = new Map<string, unknown>();
  for (const key of Object.keys(enc)) {
    const value = (enc as { [key: string]: unknown })[key];
    out.set(key, decodeValue(value, `${path}.${key}`, depth));
  }
  return out;
}

function decodeValue(enc: unknown, path: string, depth: number): unknown {
  if (enc === null || typeof enc === 'boolean' || typeof enc === 'string') {
    return enc;
  }
  if (typeof enc === 'number') return enc;
  if (typeof enc !== 'object' || depth >= MAX_DEPTH) {
    throw new SnapshotError(path, 'is not an encoded field value');
  }
  if (Array.isArray(enc)) {
    return enc.map((item, i) => decodeValue(item, `${path}[${i}]`, depth + 1));
  }
  const keys = Object.keys(enc);
  const tag = keys[0];
  const inner = (enc as { [key: string]: unknown })[tag];
  if (keys.length === 1 && tag === '$table') {
    return decodeTable(inner, path, depth + 1);
  }
  if (keys.length === 1 && typeof inner === 'string') {
    if (tag === '$bigint' && /^-?\d+$/.test(inner)) return BigInt(inner);
    if (tag === '$float' && FLOATS.has(inner)) return Number(inner);
    if (tag === '$bytes') return Buffer.from(inner, 'base64');
  }
  throw new SnapshotError(path, 'is not an encoded field value');
}

const FLOATS = new Set(['NaN', 'Infinity', '-Infinity', '-0']);
