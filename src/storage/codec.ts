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
//
// Payloads by type (the order fields are written in):
//
//   1 queue-declared  name, settings as a JSON string
//   2 queue-deleted   name
//   3 published       seq, queue, id, priority, nullable group, headers,
//                     publishedAt, availableAt, nullable expiresAt,
//                     failures, body
//   4 settled         u32le count, count x seq
//   5 retried         seq, failures, availableAt
//   6 moved           seq, queue, headers, failures, availableAt,
//                     nullable expiresAt
//
// Strings go through Buffer's UTF-8 encoder, which turns a lone surrogate
// into U+FFFD: such a string does not survive a round trip unchanged.

import { MessageTooLargeError } from '../errors.js';
import { crc32c } from './crc32c.js';
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
}

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
 * log store put many frames into one buffer of its own.
 */
export function frameBytes(record: LogRecord): number {
  const payloadBytes = payloadBytesOf(record);
  if (payloadBytes > MAX_RECORD_BYTES) {
    throw new MessageTooLargeError(payloadBytes, MAX_RECORD_BYTES);
  }
  return FRAME_HEADER_BYTES + payloadBytes;
}

/**
 * Writes `record`'s frame into buf[start, start + size), where `size` is
 * what frameBytes(record) returned.
 */
export function writeFrame(record: LogRecord, buf: Buffer, start: number, size: number): void {
  writePayload(record, buf, start + FRAME_HEADER_BYTES);
  sealFrame(buf, start, size);
}

function payloadBytesOf(record: LogRecord): number {
  switch (record.type) {
    case 'published':
      return publishedBytes(record);
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

function writePayload(record: LogRecord, buf: Buffer, start: number): void {
  switch (record.type) {
    case 'published':
      writePublished(record, buf, start);
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
    if (type !== RecordType.Published) return `expected a published record, found type ${type}`;
    const seq = cursor.f64();
    cursor.skipString();
    cursor.skipString();
    const priority = cursor.f64();
    const group = cursor.present() ? cursor.string() : null;
    cursor.skipHeaders();
    cursor.f64();
    const availableAt = cursor.f64();
    if (cursor.present()) cursor.f64();
    const failures = cursor.f64();
    const bodyBytes = cursor.count(1);
    const left = cursor.remaining() - bodyBytes;
    if (left !== 0) return `${left} bytes left after a published record`;
    return { seq, priority, group, availableAt, failures, bodyBytes };
  } catch (err) {
    if (!(err instanceof CorruptPayload)) throw err;
    return err.message;
  }
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
        seq: cursor.f64(),
        queue: cursor.string(),
        id: cursor.string(),
        priority: cursor.f64(),
        group: cursor.present() ? cursor.string() : null,
        headers: cursor.headers(),
        publishedAt: cursor.f64(),
        availableAt: cursor.f64(),
        expiresAt: cursor.present() ? cursor.f64() : null,
        failures: cursor.f64(),
        body: cursor.bytes(copyBody),
      };
    case RecordType.Settled: {
      const count = cursor.count(F64);
      const seqs = new Array<number>(count);
      for (let i = 0; i < count; i++) seqs[i] = cursor.f64();
      return { type: 'settled', seqs };
    }
    case RecordType.Retried:
      return {
        type: 'retried',
        seq: cursor.f64(),
        failures: cursor.f64(),
        availableAt: cursor.f64(),
      };
    case RecordType.Moved:
      return {
        type: 'moved',
        seq: cursor.f64(),
        queue: cursor.string(),
        headers: cursor.headers(),
        failures: cursor.f64(),
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
    const count = this.count(2 * U32);
    const headers: Record<string, string> = {};
    for (let i = 0; i < count; i++) {
      const key = this.string();
      const value = this.string();
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
    const length = this.count(1);
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
