// Typed encode and decode of method frame payloads, driven by the table in
// method-table.ts.
//
//   payload: [class-id u16][method-id u16][arguments...]
//
// Consecutive bit arguments share an octet, lowest bit first; any other
// argument ends the run (0-9-1 section 4.2.5.2). A decoded method is a
// plain object named by `name`, e.g.
//   { name: 'basic.publish', exchange: '', routingKey: 'q',
//     mandatory: false, immediate: false }

import { AmqpEncodeError, NotImplementedError } from './errors.js';
import {
  type FieldTable,
  readTable,
  tableSize,
  writeTable,
} from './field-table.js';
import {
  type ArgKind,
  METHOD_SPECS,
  type MethodSpec,
  type Sender,
} from './method-table.js';
import {
  Reader,
  ShortstrCache,
  checkInteger,
  longstrSize,
  shortstrSize,
  writeLongstr,
  writeSafeU64,
  writeShortstr,
} from './wire.js';

type Specs = typeof METHOD_SPECS;
export type MethodName = keyof Specs;

interface KindValue {
  octet: number;
  short: number;
  long: number;
  /** Delivery tags: refused on decode above Number.MAX_SAFE_INTEGER. */
  longlong: number;
  shortstr: string;
  longstr: Buffer;
  bit: boolean;
  table: FieldTable;
}

type ArgsOf<N extends MethodName> = {
  -readonly [
    A in Specs[N]['args'][number] as A[0] extends `_${string}` ? never : A[0]
  ]: KindValue[A[1]];
};

/** One method with its arguments, e.g. MethodOf<'basic.ack'>. */
export type MethodOf<N extends MethodName> = { name: N } & ArgsOf<N>;

/** Any method Usher knows, discriminated by `name`. */
export type Method = { [N in MethodName]: MethodOf<N> }[MethodName];

/** What the codec knows of a method, by name or by ids. */
export interface MethodInfo {
  readonly name: MethodName;
  readonly classId: number;
  readonly methodId: number;
  readonly sender: Sender;
  readonly content: boolean;
  readonly args: readonly Arg[];
}

interface Arg {
  readonly key: string;
  readonly kind: ArgKind;
  readonly reserved: boolean;
  /** Field path for error messages, e.g. "basic.publish.routingKey". */
  readonly path: string;
}

const BY_NAME = new Map<string, MethodInfo>();
const BY_ID = new Map<number, MethodInfo>();

for (const [name, spec] of Object.entries(METHOD_SPECS) as [
  MethodName,
  MethodSpec,
][]) {
  const info: MethodInfo = {
    name,
    classId: spec.classId,
    methodId: spec.methodId,
    sender: spec.sender,
    content: spec.content === true,
    args: spec.args.map(([key, kind]) => ({
      key,
      kind,
      reserved: key.startsWith('_'),
      path: `${name}.${key}`,
    })),
  };
  BY_NAME.set(name, info);
  BY_ID.set(spec.classId * 0x10000 + spec.methodId, info);
}

export function methodInfo(name: MethodName): MethodInfo {
  const info = BY_NAME.get(name);
  if (info === undefined) {
    throw new AmqpEncodeError(
      'method',
      `unknown method ${JSON.stringify(name)}`,
    );
  }
  return info;
}

export function methodInfoById(
  classId: number,
  methodId: number,
): MethodInfo | undefined {
  return BY_ID.get(classId * 0x10000 + methodId);
}

/** Every method name, in table order. */
export const METHOD_NAMES: readonly MethodName[] = [
  ...BY_NAME.keys(),
] as MethodName[];

// ---- decoding ----------------------------------------------------------

/**
 * Decodes a method frame's payload. Throws NOT_IMPLEMENTED for ids Usher
 * does not know and SYNTAX_ERROR for arguments that are cut short, run
 * past the payload, or leave bytes over.
 */
export function decodeMethod(payload: Buffer, start = 0, end = payload.length): Method {
  const r = METHOD_READER.reset(payload, start, end);
  r.context = 'method frame';
  const classId = r.u16('class-id');
  const methodId = r.u16('method-id');
  const info = BY_ID.get(classId * 0x10000 + methodId);
  if (info === undefined) {
    throw new NotImplementedError(
      `unknown method: class ${classId}, method ${methodId}`,
      { classId, methodId },
    );
  }

  r.context = info.name;
  r.classId = classId;
  r.methodId = methodId;
  const method =
    info === PUBLISH ? readPublish(r) : info === ACK ? readAck(r) : readArgs(r, info);
  if (r.left !== 0) {
    throw r.error(`${r.left} bytes left over after the last argument`);
  }
  return method;
}

/**
 * The one reader decodeMethod reads with: decoding is synchronous and
 * never nested (a field table gets a reader of its own), so no two
 * methods are read at once. It keeps the last payload referenced until
 * the next method: one socket chunk for the whole process.
 */
const METHOD_READER = new Reader(Buffer.alloc(0));

const PUBLISH = BY_NAME.get('basic.publish');
/** One for every connection: the broker reads one frame at a time. */
const PUBLISH_EXCHANGE = new ShortstrCache();
const PUBLISH_ROUTING_KEY = new ShortstrCache();

/**
 * basic.publish, the method of every message published, read as readArgs
 * would read it (same checks, same errors) into one object literal: the
 * generic path grows an object a key at a time.
 */
function readPublish(r: Reader): MethodOf<'basic.publish'> {
  r.u16('_ticket');
  const exchange = r.repeatedShortstr(PUBLISH_EXCHANGE, 'exchange');
  const routingKey = r.repeatedShortstr(PUBLISH_ROUTING_KEY, 'routingKey');
  const bits = r.u8('mandatory');
  return {
    name: 'basic.publish',
    exchange,
    routingKey,
    mandatory: (bits & 1) !== 0,
    immediate: (bits & 2) !== 0,
  };
}

const ACK = BY_NAME.get('basic.ack');

/**
 * basic.ack, which a consumer sends for every message, read as readArgs
 * would read it into one object literal, as readPublish is.
 */
function readAck(r: Reader): MethodOf<'basic.ack'> {
  const deliveryTag = r.safeU64('deliveryTag');
  const bits = r.u8('multiple');
  return { name: 'basic.ack', deliveryTag, multiple: (bits & 1) !== 0 };
}

function readArgs(r: Reader, info: MethodInfo): Method {
  const out: Record<string, unknown> = { name: info.name };
  let bits = 0;
  let bit = 8;
  for (const arg of info.args) {
    let value: unknown;
    if (arg.kind === 'bit') {
      if (bit === 8) {
        bits = r.u8(arg.key);
        bit = 0;
      }
      value = (bits & (1 << bit++)) !== 0;
    } else {
      bit = 8;
      value = readArg(r, arg);
    }
    if (!arg.reserved) out[arg.key] = value;
  }
  return out as Method;
}

function readArg(r: Reader, arg: Arg): unknown {
  switch (arg.kind) {
    case 'octet':
      return r.u8(arg.key);
    case 'short':
      return r.u16(arg.key);
    case 'long':
      return r.u32(arg.key);
    case 'longlong':
      return r.safeU64(arg.key);
    case 'shortstr':
      return r.shortstr(arg.key);
    case 'longstr':
      return r.longstr(arg.key);
    case 'table':
      return readTable(r, arg.key);
    case 'bit':
      throw new Error('bits are read by readArgs');
  }
}

// ---- encoding ----------------------------------------------------------

/** Size of a method's frame payload; validates every argument. */
export function methodPayloadSize(method: Method): number {
  if (method.name === 'basic.deliver') return deliverPayloadSize(method);
  const info = methodInfo(method.name);
  const values = method as unknown as Record<string, unknown>;
  let size = 4;
  let bit = 8;
  for (const arg of info.args) {
    if (arg.kind === 'bit') {
      if (bit === 8) {
        size += 1;
        bit = 0;
      }
      bit++;
      if (!arg.reserved && typeof values[arg.key] !== 'boolean') {
        throw new AmqpEncodeError(arg.path, 'expected a boolean');
      }
      continue;
    }
    bit = 8;
    size += argSize(arg, values[arg.key]);
  }
  return size;
}

/**
 * basic.deliver, sent for every message a consumer gets, sized and checked
 * as the generic loop would (same order, same errors) without reading its
 * fields by name from a method of any shape: that loop was most of the
 * cost of encoding a delivery's frames.
 */
function deliverPayloadSize(method: MethodOf<'basic.deliver'>): number {
  let size = 4 + shortstrSize(method.consumerTag, 'basic.deliver.consumerTag');
  checkInteger(method.deliveryTag, 0, Number.MAX_SAFE_INTEGER, 'basic.deliver.deliveryTag');
  if (typeof method.redelivered !== 'boolean') {
    throw new AmqpEncodeError('basic.deliver.redelivered', 'expected a boolean');
  }
  size += 8 + 1 + shortstrSize(method.exchange, 'basic.deliver.exchange');
  return size + shortstrSize(method.routingKey, 'basic.deliver.routingKey');
}

// Reserved arguments are always written empty: 0, '' or no bytes.
const RESERVED_SIZE: Record<ArgKind, number> = {
  octet: 1,
  short: 2,
  long: 4,
  longlong: 8,
  shortstr: 1,
  longstr: 4,
  table: 4,
  bit: 0,
};

function argSize(arg: Arg, value: unknown): number {
  if (arg.reserved) return RESERVED_SIZE[arg.kind];
  switch (arg.kind) {
    case 'octet':
      checkInteger(value as number, 0, 0xff, arg.path);
      return 1;
    case 'short':
      checkInteger(value as number, 0, 0xffff, arg.path);
      return 2;
    case 'long':
      checkInteger(value as number, 0, 0xffff_ffff, arg.path);
      return 4;
    case 'longlong':
      checkInteger(value as number, 0, Number.MAX_SAFE_INTEGER, arg.path);
      return 8;
    case 'shortstr':
      return shortstrSize(value as string, arg.path);
    case 'longstr':
      return longstrSize(value as Buffer, arg.path);
    case 'table':
      return tableSize(value as FieldTable, arg.path);
    case 'bit':
      throw new Error('bits are sized by methodPayloadSize');
  }
}

/**
 * Writes a method payload sized by methodPayloadSize at `offset`; returns
 * the offset after it.
 */
export function writeMethod(
  buf: Buffer,
  offset: number,
  method: Method,
): number {
  if (method.name === 'basic.deliver') return writeDeliver(buf, offset, method);
  const info = methodInfo(method.name);
  const values = method as unknown as Record<string, unknown>;
  buf.writeUInt16BE(info.classId, offset);
  buf.writeUInt16BE(info.methodId, offset + 2);
  let at = offset + 4;
  let bitAt = -1;
  let bit = 8;
  for (const arg of info.args) {
    const value = arg.reserved ? undefined : values[arg.key];
    if (arg.kind === 'bit') {
      if (bit === 8) {
        bitAt = at++;
        buf[bitAt] = 0;
        bit = 0;
      }
      if (value === true) buf[bitAt] |= 1 << bit;
      bit++;
      continue;
    }
    bit = 8;
    if (arg.reserved) {
      const size = RESERVED_SIZE[arg.kind];
      buf.fill(0, at, at + size);
      at += size;
    } else {
      at = writeArg(buf, at, arg.kind, value);
    }
  }
  return at;
}

const DELIVER = methodInfo('basic.deliver');

/** basic.deliver as writeMethod's loop writes it (see deliverPayloadSize). */
function writeDeliver(buf: Buffer, offset: number, method: MethodOf<'basic.deliver'>): number {
  buf.writeUInt16BE(DELIVER.classId, offset);
  buf.writeUInt16BE(DELIVER.methodId, offset + 2);
  let at = writeShortstr(buf, offset + 4, method.consumerTag);
  at = writeSafeU64(buf, at, method.deliveryTag);
  buf[at++] = method.redelivered ? 1 : 0;
  at = writeShortstr(buf, at, method.exchange);
  return writeShortstr(buf, at, method.routingKey);
}

function writeArg(
  buf: Buffer,
  at: number,
  kind: ArgKind,
  value: unknown,
): number {
  switch (kind) {
    case 'octet':
      buf[at] = value as number;
      return at + 1;
    case 'short':
      return buf.writeUInt16BE(value as number, at);
    case 'long':
      return buf.writeUInt32BE(value as number, at);
    case 'longlong':
      return writeSafeU64(buf, at, value as number);
    case 'shortstr':
      return writeShortstr(buf, at, value as string);
    case 'longstr':
      return writeLongstr(buf, at, value as Buffer);
    case 'table':
      return writeTable(buf, at, value as FieldTable);
    case 'bit':
      throw new Error('bits are written by writeMethod');
  }
}

/** A method payload in a Buffer of its own (no frame around it). */
export function encodeMethod(method: Method): Buffer {
  const buf = Buffer.allocUnsafe(methodPayloadSize(method));
  writeMethod(buf, 0, method);
  return buf;
}
