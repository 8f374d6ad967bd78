// Binary encoding of log records. Every record is one frame; a segment file
// is a header followed by frames back to back (see segment-file.ts).
//
//   frame
//   +----------------+----------------+--------------------------------+
//   | payload length | crc32c(payload)| payload                        |
//   | u32le          | u32le          | u8 type, then the type's fields|
//   +----------------+----------------+--------------------------------+
//   0                4                8                     8 + length
//
// Field encodings inside a payload:
//
//   number    f64le (seqs, times, priorities, counts: all exact below 2^53)
//   string    u32le byte length, then UTF-8 bytes
//   nullable  u8 0 = null; u8 1 then the value
//   headers   u32le count, then count x (string key, string value)
//   body      u32le byte length, then the bytes; always last
//   varint    LEB128: 7 bits a byte, low first, at most 8 bytes
//   vstring   varint byte length, then UTF-8 bytes
//   vheaders  varint count, then count x (vstring key, vstring value)
//   vbody     varint byte length, then the bytes; always last
//
// Type 7 is what a ticket event costs on disk beyond its body: 55 bytes
// with a generated id and no headers, where type 3 took 110. The log
// alone wrote 1.26 bytes per body byte over a publish-consume-ack cycle
// with type 3 (issue #3, whose bound is 1.3 with checkpoints).
//
// Payloads by type (the order fields are written in):
//
//   1 queue-declared  name, settings as a JSON string
//   2 queue-deleted   name
//   3 published       seq, queue, id, priority, nullable group, headers,
//                     publishedAt, availableAt, nullable expiresAt,
//                     failures, body (segment format 1; written since
//                     only for a priority or failures type 7 cannot hold)
//   7 published       u8 flags, seq, vstring queue, id, u8 priority,
//     (compact)       [vstring group], vheaders, publishedAt,
//                     [availableAt], [expiresAt], varint failures,
//                     vbody
//                     flags: 1 group, 2 expiresAt, 4 availableAt (else it
//                     equals publishedAt), 8 id is a UUID (16 bytes, for
//                     a lower-case 8-4-4-4-12 hex id; else a vstring),
//                     16 the broker made the id (with 8 only; segment
//                     format 3)
//   4 settled         u32le count, count x seq
//   5 retried         seq, failures, availableAt
//   6 moved           seq, queue, headers, failures, availableAt,
//                     nullable expiresAt
//
// Strings go through Buffer's UTF-8 encoder, which turns a lone surrogate
// into U+FFFD: such a string does not survive a round trip unchanged.

import { MessageTooLargeError } from '../errors.js';
import { crc32c } from './crc32c.js';
import { UUID_BYTES, UUID_CHARS, type UuidTable, isUuid, putUuid } from './uuid-bytes.js';
import type {
  LogRecord,
  MovedRecord,
  PublishedRecord,
  QueueSettingsRecord,
} from './records.js';

export const FRAME_HEADER_BYTES = 8;

/**
 * Largest payload a frame may carry. Decoding checks a frame's length
 * against it before allocating anything, so a corrupt length field cannot
 * make us reserve gigabytes.
 */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

const enum RecordType {
  QueueDeclared = 1,
  QueueDeleted = 2,
  Published = 3,
  Settled = 4,
  Retried = 5,
  Moved = 6,
  PublishedCompact = 7,
}

// Type 7 flags.
const HAS_GROUP = 1;
const HAS_EXPIRY = 2;
const HAS_AVAILABLE_AT = 4;
const UUID_ID = 8;
const MADE_ID = 16;
const KNOWN_FLAGS = HAS_GROUP | HAS_EXPIRY | HAS_AVAILABLE_AT | UUID_ID | MADE_ID;
const MAX_VARINT_BYTES = 8;

const F64 = 8;
const U32 = 4;
const U8 = 1;

/**
 * Encodes `record` as one complete frame in a single buffer. Throws
 * MessageTooLargeError if the payload would exceed MAX_RECORD_BYTES.
 */
export function encodeRecord(record: LogRecord): Buffer {
  const size = frameBytes(record);
  const buf = Buffer.allocUnsafe(size);
  writeFrame(record, buf, 0, size);
  return buf;
}

/**
 * Bytes of `record`'s frame, header included. Throws MessageTooLargeError
 * if the payload would exceed MAX_RECORD_BYTES. With writeFrame, lets the
 * log store put many frames into one buffer of its own. `ids`: for a
 * `published` record, a table holding its id as entry `index`, read
 * there instead of from the string.
 */
export function frameBytes(record: LogRecord, ids?: UuidTable, index = 0): number {
  const payloadBytes = payloadBytesOf(record, ids, index);
  if (payloadBytes > MAX_RECORD_BYTES) {
    throw new MessageTooLargeError(payloadBytes, MAX_RECORD_BYTES);
  }
  return FRAME_HEADER_BYTES + payloadBytes;
}

/**
 * Writes `record`'s frame into buf[start, start + size), where `size` is
 * what frameBytes(record, ids, index) returned.
 */
export function writeFrame(
  record: LogRecord,
  buf: Buffer,
  start: number,
  size: number,
  ids?: UuidTable,
  index = 0,
): void {
  const payloadBytes = size - FRAME_HEADER_BYTES;
  const scratch = scratchOf(payloadBytes);
  if (scratch === undefined) {
    writePayload(record, buf, start + FRAME_HEADER_BYTES, ids, index);
    sealFrame(buf, start, size);
    return;
  }
  writePayload(record, scratch, 0, ids, index);
  buf.writeUInt32LE(payloadBytes, start);
  buf.writeUInt32LE(crc32c(scratch), start + 4);
  buf.set(scratch, start + FRAME_HEADER_BYTES);
}

// The checksum binding takes a whole typed array, so a payload written in
// place needs a view of its own: an object of ~100 bytes a record, a tenth
// of what a publish allocated. A payload of a size seen lately is instead
// written into a reused view of that exact size over one scratch buffer,
// checksummed there and copied into place; the copy costs less than the
// view and the garbage it leaves (bench:storage, issue #3). Sizes repeat:
// the records of one producer differ little. Bounded, and emptied when full.
const SCRATCH_PAYLOAD_BYTES = 4096;
const SCRATCH_SIZES = 256;
const scratchMemory = Buffer.allocUnsafeSlow(SCRATCH_PAYLOAD_BYTES);
const scratchBySize = new Map<number, Buffer>();

// The last one handed out, checked before the map: runs of one size are
// the common case.
let lastScratch: Buffer = scratchMemory.subarray(0, 0);

function scratchOf(payloadBytes: number): Buffer | undefined {
  if (payloadBytes === lastScratch.length) return lastScratch;
  if (payloadBytes > SCRATCH_PAYLOAD_BYTES) return undefined;
  let scratch = scratchBySize.get(payloadBytes);
  if (scratch === undefined) {
    if (scratchBySize.size === SCRATCH_SIZES) scratchBySize.clear();
    scratch = scratchMemory.subarray(0, payloadBytes);
    scratchBySize.set(payloadBytes, scratch);
  }
  lastScratch = scratch;
  return scratch;
}

function payloadBytesOf(record: LogRecord, ids: UuidTable | undefined, index: number): number {
  switch (record.type) {
    case 'published':
      return isCompact(record) ? compactBytes(record, ids, index) : publishedBytes(record);
    case 'moved':
      return (
        U8 +
        F64 +
        stringBytes(record.queue) +
        headersBytes(record.headers) +
        2 * F64 +
        U8 +
        (record.expiresAt === null ? 0 : F64)
      );
    case 'settled':
      return U8 + U32 + record.seqs.length * F64;
    case 'retried':
      return U8 + 3 * F64;
    case 'queue-declared':
      return U8 + stringBytes(record.name) + stringBytes(JSON.stringify(record.settings));
    case 'queue-deleted':
      return U8 + stringBytes(record.name);
  }
}

function writePayload(
  record: LogRecord,
  buf: Buffer,
  start: number,
  ids: UuidTable | undefined,
  index: number,
): void {
  switch (record.type) {
    case 'published':
      if (isCompact(record)) writeCompact(record, buf, start, ids, index);
      else writePublished(record, buf, start);
      return;
    case 'moved':
      writeMoved(record, buf, start);
      return;
    case 'settled': {
      const seqs = record.seqs;
      let off = buf.writeUInt8(RecordType.Settled, start);
      off = buf.writeUInt32LE(seqs.length, off);
      for (let i = 0; i < seqs.length; i++) {
        off = buf.writeDoubleLE(seqs[i], off);
      }
      return;
    }
    case 'retried': {
      let off = buf.writeUInt8(RecordType.Retried, start);
      off = buf.writeDoubleLE(record.seq, off);
      off = buf.writeDoubleLE(record.failures, off);
      buf.writeDoubleLE(record.availableAt, off);
      return;
    }
    case 'queue-declared': {
      const off = buf.writeUInt8(RecordType.QueueDeclared, start);
      putString(buf, putString(buf, off, record.name), JSON.stringify(record.settings));
      return;
    }
    case 'queue-deleted':
      putString(buf, buf.writeUInt8(RecordType.QueueDeleted, start), record.name);
      return;
  }
}

// The hot path: ticket events are ~460-byte `published` records. Sizes are
// measured first so the frame is written in place in one pass; the body
// is the only copy of message data we make.
function publishedBytes(record: PublishedRecord): number {
  const group = record.group;
  return (
    U8 +
    F64 +
    stringBytes(record.queue) +
    stringBytes(record.id) +
    F64 +
    U8 +
    (group === null ? 0 : stringBytes(group)) +
    headersBytes(record.headers) +
    2 * F64 +
    U8 +
    (record.expiresAt === null ? 0 : F64) +
    F64 +
    U32 +
    record.body.length
  );
}

function writePublished(record: PublishedRecord, buf: Buffer, start: number): void {
  const group = record.group;
  let off = buf.writeUInt8(RecordType.Published, start);
  off = buf.writeDoubleLE(record.seq, off);
  off = putString(buf, off, record.queue);
  off = putString(buf, off, record.id);
  off = buf.writeDoubleLE(record.priority, off);
  if (group === null) {
    off = buf.writeUInt8(0, off);
  } else {
    off = buf.writeUInt8(1, off);
    off = putString(buf, off, group);
  }
  off = putHeaders(buf, off, record.headers);
  off = buf.writeDoubleLE(record.publishedAt, off);
  off = buf.writeDoubleLE(record.availableAt, off);
  off = putNullableNumber(buf, off, record.expiresAt);
  off = buf.writeDoubleLE(record.failures, off);
  off = buf.writeUInt32LE(record.body.length, off);
  record.body.copy(buf, off);
}

// Type 7 holds a priority of 0-255 and a failure count that is a whole
// number; anything else (the engine never makes it, a test may) goes out
// as type 3. -0 is kept apart so that every record reads back as it was.
function isCompact(record: PublishedRecord): boolean {
  const { priority, failures } = record;
  return (
    Number.isInteger(priority) && priority >= 0 && priority <= 0xff &&
    !Object.is(priority, -0) &&
    Number.isSafeInteger(failures) && failures >= 0 && !Object.is(failures, -0)
  );
}

function compactBytes(record: PublishedRecord, ids: UuidTable | undefined, index: number): number {
  const group = record.group;
  const uuid = ids === undefined ? isUuid(record.id) : ids.isUuid(index);
  return (
    U8 +
    U8 +
    F64 +
    queueBytes(record.queue) +
    (uuid ? UUID_BYTES : vstringBytes(record.id)) +
    U8 +
    (group === null ? 0 : vstringBytes(group)) +
    vheadersBytes(record.headers) +
    F64 +
    (Object.is(record.availableAt, record.publishedAt) ? 0 : F64) +
    (record.expiresAt === null ? 0 : F64) +
    varintBytes(record.failures) +
    varintBytes(record.body.length) +
    record.body.length
  );
}

function writeCompact(
  record: PublishedRecord,
  buf: Buffer,
  start: number,
  ids: UuidTable | undefined,
  index: number,
): void {
  const { group, expiresAt } = record;
  const sameTime = Object.is(record.availableAt, record.publishedAt);
  buf[start] = RecordType.PublishedCompact;
  let off = buf.writeDoubleLE(record.seq, start + 2);
  off = putQueue(buf, off, record.queue);
  let uuid: boolean;
  if (ids === undefined) {
    // Tried as a UUID first: putUuid checks the id as it writes, and one
    // that is not a UUID is written over as a vstring, at least as long.
    const afterUuid = putUuid(buf, off, record.id);
    uuid = afterUuid >= 0;
    off = uuid ? afterUuid : putVstring(buf, off, record.id);
  } else {
    uuid = ids.isUuid(index);
    off = uuid ? ids.copyTo(index, buf, off) : putVstring(buf, off, record.id);
  }
  buf[start + 1] =
    (group === null ? 0 : HAS_GROUP) |
    (expiresAt === null ? 0 : HAS_EXPIRY) |
    (sameTime ? 0 : HAS_AVAILABLE_AT) |
    (uuid ? UUID_ID : 0) |
    (uuid && record.madeId === true ? MADE_ID : 0);
  buf[off++] = record.priority;
  if (group !== null) off = putVstring(buf, off, group);
  off = putVheaders(buf, off, record.headers);
  off = buf.writeDoubleLE(record.publishedAt, off);
  if (!sameTime) off = buf.writeDoubleLE(record.availableAt, off);
  if (expiresAt !== null) off = buf.writeDoubleLE(expiresAt, off);
  off = putVarint(buf, off, record.failures);
  off = putVarint(buf, off, record.body.length);
  // set, not copy: Buffer's copy checks its arguments and goes through
  // two more calls to the same set.
  buf.set(record.body, off);
}

// A UUID read back is spelled into one scratch buffer and made a string
// in one step: joining its pieces as strings made replay of ten million
// records about 1.5 s slower.
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');
const UUID_TEXT = Buffer.from('00000000-0000-0000-0000-000000000000', 'latin1');

// The queue of the last compact record measured, as its vstring: a batch
// holds hundreds of records of one queue, and its name measured and
// written a char at a time was ~3% of the publish path (issue #3). Names
// longer than the scratch are not kept.
const QUEUE_SCRATCH_BYTES = 128;
const queueScratch = Buffer.allocUnsafeSlow(QUEUE_SCRATCH_BYTES);
let keptQueue: string | undefined;
let keptQueueBytes = 0;

function queueBytes(queue: string): number {
  if (queue === keptQueue) return keptQueueBytes;
  const bytes = vstringBytes(queue);
  if (bytes <= QUEUE_SCRATCH_BYTES) {
    putVstring(queueScratch, 0, queue);
    keptQueue = queue;
    keptQueueBytes = bytes;
  }
  return bytes;
}

function putQueue(buf: Buffer, off: number, queue: string): number {
  if (queue !== keptQueue) return putVstring(buf, off, queue);
  for (let i = 0; i < keptQueueBytes; i++) buf[off + i] = queueScratch[i];
  return off + keptQueueBytes;
}

function varintBytes(value: number): number {
  let bytes = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    bytes++;
  }
  return bytes;
}

function putVarint(buf: Buffer, off: number, value: number): number {
  while (value >= 0x80) {
    buf[off++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  buf[off++] = value;
  return off;
}

function utf8Bytes(value: string): number {
  return isShortAscii(value) ? value.length : Buffer.byteLength(value, 'utf8');
}

function vstringBytes(value: string): number {
  const bytes = utf8Bytes(value);
  return varintBytes(bytes) + bytes;
}

function putVstring(buf: Buffer, off: number, value: string): number {
  if (isShortAscii(value)) {
    off = putVarint(buf, off, value.length);
    for (let i = 0; i < value.length; i++) buf[off + i] = value.charCodeAt(i);
    return off + value.length;
  }
  const bytes = Buffer.byteLength(value, 'utf8');
  off = putVarint(buf, off, bytes);
  return off + buf.write(value, off, bytes, 'utf8');
}

// The headers of the last compact record measured, as their vheaders
// bytes. Messages published together mostly carry equal headers (over
// AMQP: one publisher's delivery mode, exchange and routing key), and
// measuring and writing them a char at a time, key by key, was about a
// tenth of a durable AMQP publish's main thread (issue #4). Headers are
// compared with the kept ones string by string, when measured and again
// when written: a batch measures all its records before it writes any.
const HEADERS_SCRATCH_BYTES = 256;
const headersScratch = Buffer.allocUnsafeSlow(HEADERS_SCRATCH_BYTES);
/** Key, value, key, value... of the kept headers. */
const keptHeaders: string[] = [];
let keptHeadersBytes = 0;

function vheadersBytes(headers: Record<string, string>): number {
  if (equalsKept(headers)) return keptHeadersBytes;
  let count = 0;
  let bytes = 0;
  for (const key in headers) {
    bytes += vstringBytes(key) + vstringBytes(headers[key]);
    count++;
  }
  const total = varintBytes(count) + bytes;
  // None is one byte either way, and keeping it would only evict others.
  if (count > 0 && total <= HEADERS_SCRATCH_BYTES) keepHeaders(headers, total);
  return total;
}

function equalsKept(headers: Record<string, string>): boolean {
  const kept = keptHeaders;
  if (kept.length === 0) return false;
  let i = 0;
  for (const key in headers) {
    if (i === kept.length || kept[i] !== key || kept[i + 1] !== headers[key]) return false;
    i += 2;
  }
  return i === kept.length;
}

function keepHeaders(headers: Record<string, string>, bytes: number): void {
  keptHeaders.length = 0;
  for (const key in headers) keptHeaders.push(key, headers[key]);
  writeVheaders(headersScratch, 0, headers);
  keptHeadersBytes = bytes;
}

function putVheaders(buf: Buffer, off: number, headers: Record<string, string>): number {
  if (!equalsKept(headers)) return writeVheaders(buf, off, headers);
  for (let i = 0; i < keptHeadersBytes; i++) buf[off + i] = headersScratch[i];
  return off + keptHeadersBytes;
}

function writeVheaders(buf: Buffer, off: number, headers: Record<string, string>): number {
  let count = 0;
  for (const _ in headers) count++;
  off = putVarint(buf, off, count);
  for (const key in headers) {
    off = putVstring(buf, off, key);
    off = putVstring(buf, off, headers[key]);
  }
  return off;
}

function writeMoved(record: MovedRecord, buf: Buffer, start: number): void {
  let off = buf.writeUInt8(RecordType.Moved, start);
  off = buf.writeDoubleLE(record.seq, off);
  off = putString(buf, off, record.queue);
  off = putHeaders(buf, off, record.headers);
  off = buf.writeDoubleLE(record.failures, off);
  off = buf.writeDoubleLE(record.availableAt, off);
  putNullableNumber(buf, off, record.expiresAt);
}

// The length, then the checksum once the payload is written.
function sealFrame(buf: Buffer, start: number, size: number): void {
  const payloadBytes = size - FRAME_HEADER_BYTES;
  buf.writeUInt32LE(payloadBytes, start);
  // A plain Uint8Array view: cheaper to make than Buffer's subarray.
  const from = buf.byteOffset + start + FRAME_HEADER_BYTES;
  const payload = new Uint8Array(buf.buffer, from, payloadBytes);
  buf.writeUInt32LE(crc32c(payload), start + 4);
}

function stringBytes(value: string): number {
  return U32 + (isShortAscii(value) ? value.length : Buffer.byteLength(value, 'utf8'));
}

// Most strings in a record are short and ASCII: queue names, ids, header
// names and values. Copied a char at a time in JS they skip Buffer's
// native write and byteLength, which cost more than the copy at this size
// (each crosses into C++ and checks its arguments there).
const SHORT_STRING = 64;

function isShortAscii(value: string): boolean {
  const length = value.length;
  if (length > SHORT_STRING) return false;
  for (let i = 0; i < length; i++) {
    if (value.charCodeAt(i) >= 0x80) return false;
  }
  return true;
}

function headersBytes(headers: Record<string, string>): number {
  let bytes = U32;
  for (const key in headers) {
    bytes += stringBytes(key) + stringBytes(headers[key]);
  }
  return bytes;
}

// Writes the UTF-8 bytes first and the length prefix after, so each string
// is measured once for sizing and once here, never converted twice.
function putString(buf: Buffer, off: number, value: string): number {
  if (isShortAscii(value)) {
    const at = off + U32;
    for (let i = 0; i < value.length; i++) buf[at + i] = value.charCodeAt(i);
    buf.writeUInt32LE(value.length, off);
    return at + value.length;
  }
  const written = buf.write(value, off + U32, 'utf8');
  buf.writeUInt32LE(written, off);
  return off + U32 + written;
}

function putHeaders(
  buf: Buffer,
  off: number,
  headers: Record<string, string>,
): number {
  const countAt = off;
  let count = 0;
  off += U32;
  for (const key in headers) {
    off = putString(buf, off, key);
    off = putString(buf, off, headers[key]);
    count++;
  }
  buf.writeUInt32LE(count, countAt);
  return off;
}

function putNullableNumber(
  buf: Buffer,
  off: number,
  value: number | null,
): number {
  if (value === null) return buf.writeUInt8(0, off);
  off = buf.writeUInt8(1, off);
  return buf.writeDoubleLE(value, off);
}

export type DecodeResult =
  | { ok: true; record: LogRecord }
  | { ok: false; reason: string };

/**
 * Decodes one payload (the bytes after a frame header). Never throws:
 * a payload that is short, too long for its fields, or names an unknown
 * type comes back as `{ ok: false, reason }`.
 *
 * With `copyBody` false a `published` body is a view into `payload`,
 * which keeps the whole underlying buffer alive as long as the body is.
 */
export function decodePayload(
  payload: Buffer,
  copyBody: boolean,
): DecodeResult {
  const cursor = new Cursor(payload);
  try {
    const record = readRecord(cursor, copyBody);
    const left = cursor.remaining();
    if (left !== 0) {
      return {
        ok: false,
        reason: `${left} bytes left after a ${record.type} record`,
      };
    }
    return { ok: true, record };
  } catch (err) {
    if (!(err instanceof CorruptPayload)) throw err;
    return { ok: false, reason: err.message };
  }
}

/**
 * What a restart needs of a `published` record to put its message back
 * cold (broker/rebuild.ts): the scheduling fields, not the id, headers or
 * body, which stay on disk until the message is paged in.
 */
export interface PublishedHead {
  seq: number;
  priority: number;
  group: string | null;
  availableAt: number;
  failures: number;
  bodyBytes: number;
}

/**
 * Decodes the scheduling fields of a `published` payload, checking its
 * shape as decodePayload does (every length in bounds, nothing left
 * over) but making no string but the group and no copy of the body.
 * Never throws: anything else comes back as the reason it is not one.
 */
export function decodePublishedHead(payload: Buffer): PublishedHead | string {
  const cursor = new Cursor(payload);
  try {
    const type = cursor.u8();
    if (type === RecordType.PublishedCompact) return compactHead(cursor);
    if (type !== RecordType.Published) return `expected a published record, found type ${type}`;
    const seq = cursor.integer();
    cursor.skipString();
    cursor.skipString();
    const priority = cursor.integer();
    const group = cursor.present() ? cursor.string() : null;
    cursor.skipHeaders();
    cursor.f64();
    const availableAt = cursor.f64();
    if (cursor.present()) cursor.f64();
    const failures = cursor.integer();
    const bodyBytes = cursor.count(1);
    const left = cursor.remaining() - bodyBytes;
    if (left !== 0) return `${left} bytes left after a published record`;
    return { seq, priority, group, availableAt, failures, bodyBytes };
  } catch (err) {
    if (!(err instanceof CorruptPayload)) throw err;
    return err.message;
  }
}

// decodePublishedHead of a type 7 payload, past its type byte. Throws
// CorruptPayload as readRecord does on the same bytes.
function compactHead(cursor: Cursor): PublishedHead | string {
  const flags = cursor.u8();
  if ((flags & ~KNOWN_FLAGS) !== 0) throw new CorruptPayload(`published flags ${flags}`);
  const seq = cursor.integer();
  cursor.skipVstring();
  if ((flags & UUID_ID) !== 0) cursor.skipUuid();
  else cursor.skipVstring();
  const priority = cursor.u8();
  const group = (flags & HAS_GROUP) !== 0 ? cursor.vstring() : null;
  cursor.skipVheaders();
  const publishedAt = cursor.f64();
  const availableAt = (flags & HAS_AVAILABLE_AT) !== 0 ? cursor.f64() : publishedAt;
  if ((flags & HAS_EXPIRY) !== 0) cursor.f64();
  const failures = cursor.varint();
  const bodyBytes = cursor.varint();
  const left = cursor.remaining() - bodyBytes;
  if (left < 0) throw new CorruptPayload(`a body of ${bodyBytes} bytes needs ${-left} more`);
  if (left !== 0) return `${left} bytes left after a published record`;
  return { seq, priority, group, availableAt, failures, bodyBytes };
}

/** Work done by payloadFits, for a caller that bounds its total. */
export interface FitWork {
  /** Header entries walked: the only cost that grows with the input. */
  steps: number;
}

/**
 * Whether `payload` has the shape of a record: a known type whose fields,
 * followed by their length prefixes alone, end exactly at its last byte.
 * It allocates nothing and never throws, so recovery can try it at every
 * offset of a damaged stretch before paying for a checksum. Every payload
 * decodePayload accepts fits; one that fits may still be garbage.
 */
export function payloadFits(payload: Buffer, work: FitWork): boolean {
  const end = payload.length;
  if (end === 0) return false;

  let off = U8;
  switch (payload[0]) {
    case RecordType.QueueDeclared:
      off = skipString(payload, skipString(payload, off));
      break;
    case RecordType.QueueDeleted:
      off = skipString(payload, off);
      break;
    case RecordType.Published:
      off = skipString(payload, skipFixed(payload, off, F64));
      off = skipFixed(payload, skipString(payload, off), F64);
      off = skipNullable(payload, off, -1);
      off = skipHeaders(payload, off, work);
      off = skipNullable(payload, skipFixed(payload, off, 2 * F64), F64);
      off = skipString(payload, skipFixed(payload, off, F64));
      break;
    case RecordType.PublishedCompact:
      return compactFits(payload, work);
    case RecordType.Settled:
      if (end < U8 + U32) return false;
      return end === U8 + U32 + payload.readUInt32LE(U8) * F64;
    case RecordType.Retried:
      return end === U8 + 3 * F64;
    case RecordType.Moved:
      off = skipString(payload, skipFixed(payload, off, F64));
      off = skipHeaders(payload, off, work);
      off = skipNullable(payload, skipFixed(payload, off, 2 * F64), F64);
      break;
    default:
      return false;
  }
  return off === end;
}

function readRecord(cursor: Cursor, copyBody: boolean): LogRecord {
  const type = cursor.u8();
  switch (type) {
    case RecordType.QueueDeclared:
      return {
        type: 'queue-declared',
        name: cursor.string(),
        settings: parseSettings(cursor.string()),
      };
    case RecordType.QueueDeleted:
      return { type: 'queue-deleted', name: cursor.string() };
    case RecordType.Published:
      return {
        type: 'published',
        seq: cursor.integer(),
        queue: cursor.string(),
        id: cursor.string(),
        priority: cursor.integer(),
        group: cursor.present() ? cursor.string() : null,
        headers: cursor.headers(),
        publishedAt: cursor.f64(),
        availableAt: cursor.f64(),
        expiresAt: cursor.present() ? cursor.f64() : null,
        failures: cursor.integer(),
        body: cursor.bytes(copyBody),
      };
    case RecordType.PublishedCompact: {
      const flags = cursor.u8();
      if ((flags & ~KNOWN_FLAGS) !== 0) throw new CorruptPayload(`published flags ${flags}`);
      const seq = cursor.integer();
      const queue = cursor.vstring();
      const id = (flags & UUID_ID) !== 0 ? cursor.uuid() : cursor.vstring();
      const priority = cursor.u8();
      const group = (flags & HAS_GROUP) !== 0 ? cursor.vstring() : null;
      const headers = cursor.vheaders();
      const publishedAt = cursor.f64();
      const availableAt = (flags & HAS_AVAILABLE_AT) !== 0 ? cursor.f64() : publishedAt;
      const expiresAt = (flags & HAS_EXPIRY) !== 0 ? cursor.f64() : null;
      const failures = cursor.varint();
      const record: PublishedRecord = {
        type: 'published',
        seq,
        queue,
        id,
        priority,
        group,
        headers,
        publishedAt,
        availableAt,
        expiresAt,
        failures,
        body: cursor.vbytes(copyBody),
      };
      if ((flags & MADE_ID) !== 0) record.madeId = true;
      return record;
    }
    case RecordType.Settled: {
      const count = cursor.count(F64);
      const seqs = new Array<number>(count);
      for (let i = 0; i < count; i++) seqs[i] = cursor.integer();
      return { type: 'settled', seqs };
    }
    case RecordType.Retried:
      return {
        type: 'retried',
        seq: cursor.integer(),
        failures: cursor.integer(),
        availableAt: cursor.f64(),
      };
    case RecordType.Moved:
      return {
        type: 'moved',
        seq: cursor.integer(),
        queue: cursor.string(),
        headers: cursor.headers(),
        failures: cursor.integer(),
        availableAt: cursor.f64(),
        expiresAt: cursor.present() ? cursor.f64() : null,
      };
    default:
      throw new CorruptPayload(`unknown record type ${type}`);
  }
}

function parseSettings(json: string): QueueSettingsRecord {
  let settings: unknown;
  try {
    settings = JSON.parse(json);
  } catch {
    throw new CorruptPayload('queue settings are not valid JSON');
  }
  if (
    typeof settings !== 'object' ||
    settings === null ||
    Array.isArray(settings)
  ) {
    throw new CorruptPayload('queue settings are not a JSON object');
  }
  return settings as QueueSettingsRecord;
}

// Raised inside the decoder only; decodePayload turns it into a result.
class CorruptPayload extends Error {}

// Reads fields front to back, checking every length against the bytes
// that remain before slicing or allocating.
/**
 * `value` as V8 holds a small integer, when it is a 32-bit one; anything
 * else (-0, a fraction a test wrote) as it is. Unoptimized, readDoubleLE
 * boxes even 5126 as a heap number, and optimized arithmetic may box 0.
 * Stored into a record made like the broker's own (the same keys in the
 * same order), a boxed seq turned the shared `seq` field into a double
 * field. That deprecated the map the broker's records are born with, so
 * each new one was migrated on its first read, and the feedback changes
 * that caused kept publishBatch from being optimized at all.
 */
function smallInteger(value: number): number {
  return Object.is(value | 0, value) ? value | 0 : value;
}

class Cursor {
  #buf: Buffer;
  #off = 0;

  constructor(buf: Buffer) {
    this.#buf = buf;
  }

  remaining(): number {
    return this.#buf.length - this.#off;
  }

  u8(): number {
    this.#need(U8, 'u8');
    return this.#buf.readUInt8(this.#off++);
  }

  /** The marker before a nullable field: true if a value follows. */
  present(): boolean {
    const marker = this.u8();
    if (marker > 1) throw new CorruptPayload(`null marker ${marker}`);
    return marker === 1;
  }

  f64(): number {
    this.#need(F64, 'f64');
    const value = this.#buf.readDoubleLE(this.#off);
    this.#off += F64;
    return value;
  }

  /** An f64 that holds a whole number: a seq, a priority, a count of failures. */
  integer(): number {
    return smallInteger(this.f64());
  }

  /** A u32 element count, checked so `count * minBytes` bytes remain. */
  count(minBytes: number): number {
    this.#need(U32, 'count');
    const count = this.#buf.readUInt32LE(this.#off);
    this.#off += U32;
    this.#need(count * minBytes, `${count} elements`);
    return count;
  }

  string(): string {
    const length = this.count(1);
    const start = this.#off;
    this.#off += length;
    return this.#buf.toString('utf8', start, this.#off);
  }

  skipString(): void {
    // Not `this.#off += this.count(1)`: that reads the offset before
    // count() moves it past the length.
    const length = this.count(1);
    this.#off += length;
  }

  skipHeaders(): void {
    const count = this.count(2 * U32);
    for (let i = 0; i < 2 * count; i++) this.skipString();
  }

  headers(): Record<string, string> {
    // Each header is at least two empty strings: 2 x u32 length.
    return this.#headers(this.count(2 * U32), () => this.string());
  }

  /** A varint of at most MAX_VARINT_BYTES, below 2^53. */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (let bytes = 0; bytes < MAX_VARINT_BYTES; bytes++) {
      const byte = this.u8();
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (value > Number.MAX_SAFE_INTEGER) throw new CorruptPayload(`varint ${value}`);
        // Optimized, the sum above is a double, even for 0.
        return smallInteger(value);
      }
      scale *= 0x80;
    }
    throw new CorruptPayload(`varint longer than ${MAX_VARINT_BYTES} bytes`);
  }

  vstring(): string {
    const length = this.varint();
    this.#need(length, `a string of ${length} bytes`);
    const start = this.#off;
    this.#off += length;
    return this.#buf.toString('utf8', start, this.#off);
  }

  uuid(): string {
    this.#need(UUID_BYTES, 'uuid');
    const buf = this.#buf;
    const text = UUID_TEXT;
    let at = 0;
    for (let i = 0; i < UUID_BYTES; i++) {
      if (i === 4 || i === 6 || i === 8 || i === 10) at++;
      const byte = buf[this.#off + i];
      text[at++] = HEX_DIGITS[byte >>> 4];
      text[at++] = HEX_DIGITS[byte & 0x0f];
    }
    this.#off += UUID_BYTES;
    return text.toString('latin1', 0, UUID_CHARS);
  }

  vheaders(): Record<string, string> {
    const count = this.varint();
    // Each header is at least two empty strings: 2 x a one-byte length.
    this.#need(count * 2, `${count} headers`);
    return this.#headers(count, () => this.vstring());
  }

  skipVstring(): void {
    const length = this.varint();
    this.#need(length, `a string of ${length} bytes`);
    this.#off += length;
  }

  skipUuid(): void {
    this.#need(UUID_BYTES, 'uuid');
    this.#off += UUID_BYTES;
  }

  skipVheaders(): void {
    const count = this.varint();
    this.#need(count * 2, `${count} headers`);
    for (let i = 0; i < 2 * count; i++) this.skipVstring();
  }

  /** A type 7 body: a varint length, then the bytes. */
  vbytes(copy: boolean): Buffer {
    const length = this.varint();
    this.#need(length, `a body of ${length} bytes`);
    return this.#take(length, copy);
  }

  #headers(count: number, text: () => string): Record<string, string> {
    const headers: Record<string, string> = {};
    for (let i = 0; i < count; i++) {
      const key = text();
      const value = text();
      if (key === '__proto__') {
        // Plain assignment would replace the object's prototype.
        Object.defineProperty(headers, key, {
          value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else {
        headers[key] = value;
      }
    }
    return headers;
  }

  bytes(copy: boolean): Buffer {
    return this.#take(this.count(1), copy);
  }

  #take(length: number, copy: boolean): Buffer {
    const view = this.#buf.subarray(this.#off, this.#off + length);
    this.#off += length;
    if (!copy) return view;
    // A buffer of its own, outside Buffer's shared 8 KiB pool, so a body
    // kept for days pins only its own bytes.
    const body = Buffer.allocUnsafeSlow(length);
    view.copy(body);
    return body;
  }

  #need(bytes: number, what: string): void {
    if (bytes > this.#buf.length - this.#off) {
      throw new CorruptPayload(
        `${what} needs ${bytes} bytes at payload offset ${this.#off}, ` +
          `${this.#buf.length - this.#off} remain`,
      );
    }
  }
}

// Type 7: the fields fit and the body ends at the payload's last byte.
function compactFits(payload: Buffer, work: FitWork): boolean {
  if (payload.length < 2 * U8) return false;
  const flags = payload[1];
  if ((flags & ~KNOWN_FLAGS) !== 0) return false;
  let off = skipVstring(payload, skipFixed(payload, 2 * U8, F64));
  off = (flags & UUID_ID) !== 0 ? skipFixed(payload, off, UUID_BYTES) : skipVstring(payload, off);
  off = skipFixed(payload, off, U8);
  if ((flags & HAS_GROUP) !== 0) off = skipVstring(payload, off);
  off = skipVheaders(payload, off, work);
  const times = F64 +
    ((flags & HAS_AVAILABLE_AT) !== 0 ? F64 : 0) + ((flags & HAS_EXPIRY) !== 0 ? F64 : 0);
  off = skipVstring(payload, skipVarint(payload, skipFixed(payload, off, times)));
  return off === payload.length;
}

// payloadFits' field skippers. Each takes the offset of a field and
// returns the offset after it, or -1 once anything does not fit; -1 in
// gives -1 out, so they chain without checks in between.

function skipFixed(buf: Buffer, off: number, bytes: number): number {
  return off < 0 || bytes > buf.length - off ? -1 : off + bytes;
}

// Strings and bodies alike: a u32 length, then that many bytes.
function skipString(buf: Buffer, off: number): number {
  if (off < 0 || U32 > buf.length - off) return -1;
  return skipFixed(buf, off + U32, buf.readUInt32LE(off));
}

// A null marker, then the value: a string if `bytes` is -1, else fixed.
function skipNullable(buf: Buffer, off: number, bytes: number): number {
  if (off < 0 || off >= buf.length) return -1;
  const marker = buf[off];
  if (marker === 0) return off + U8;
  if (marker !== 1) return -1;
  return bytes < 0
    ? skipString(buf, off + U8)
    : skipFixed(buf, off + U8, bytes);
}

function skipHeaders(buf: Buffer, off: number, work: FitWork): number {
  if (off < 0 || U32 > buf.length - off) return -1;
  const count = buf.readUInt32LE(off);
  off += U32;
  // Each header is at least two empty strings: 2 x u32 length.
  if (count * 2 * U32 > buf.length - off) return -1;
  for (let i = 0; i < count && off >= 0; i++) {
    work.steps++;
    off = skipString(buf, skipString(buf, off));
  }
  return off;
}

// The offset after a varint, or -1 if it runs past the end, is longer
// than MAX_VARINT_BYTES or beyond 2^53 (as Cursor.varint refuses).
function skipVarint(buf: Buffer, off: number): number {
  return varintAt(buf, off).next;
}

function varintAt(buf: Buffer, off: number): { value: number; next: number } {
  if (off < 0) return { value: 0, next: -1 };
  let value = 0;
  let scale = 1;
  for (let bytes = 0; bytes < MAX_VARINT_BYTES && off + bytes < buf.length; bytes++) {
    const byte = buf[off + bytes];
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      if (value > Number.MAX_SAFE_INTEGER) break;
      return { value, next: off + bytes + 1 };
    }
    scale *= 0x80;
  }
  return { value: 0, next: -1 };
}

function skipVstring(buf: Buffer, off: number): number {
  const { value, next } = varintAt(buf, off);
  return skipFixed(buf, next, value);
}

function skipVheaders(buf: Buffer, off: number, work: FitWork): number {
  const { value: count, next } = varintAt(buf, off);
  off = next;
  if (off < 0 || count * 2 > buf.length - off) return -1;
  for (let i = 0; i < count && off >= 0; i++) {
    work.steps++;
    off = skipVstring(buf, skipVstring(buf, off));
  }
  return off;
}
