// Decoding of log records: the payload format is codec.ts's (its header
// describes every type and field). Every length is checked against the
// bytes that remain before anything is sliced or allocated, and a payload
// that does not decode whole is refused, never half-read.

import { UUID_BYTES, UUID_CHARS } from './uuid-bytes.js';
import type { LogRecord, PublishedRecord, QueueSettingsRecord } from './records.js';
import {
  F64, HAS_AVAILABLE_AT, HAS_EXPIRY, HAS_GROUP, KNOWN_FLAGS, MADE_ID,
  MAX_VARINT_BYTES, RecordType, U32, U8, UUID_ID,
} from './codec.js';

// A UUID read back is spelled into one scratch buffer and made a string
// in one step: joining its pieces as strings made replay of ten million
// records about 1.5 s slower.
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');
const UUID_TEXT = Buffer.from('00000000-0000-0000-0000-000000000000', 'latin1');

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
      const queue = cursor.vqueue();
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

/**
 * The last value decoded from some bytes, kept with a copy of them: a
 * page of messages read back is mostly one publisher's, whose records
 * repeat the queue name and the headers byte for byte. Decoding them
 * (7 strings a message, 6 of them the headers AMQP adds) was 6-7% of
 * the broker's CPU draining a cold 464 B backlog (bench:amqp --only
 * durable); comparing the bytes costs a fraction of that. Bytes longer
 * than MAX_BYTES are not kept.
 */
class LastDecoded<T> {
  static readonly MAX_BYTES = 512;
  readonly #bytes = Buffer.allocUnsafeSlow(LastDecoded.MAX_BYTES);
  #length = -1;

  constructor(public value: T) {}

  /** Whether `buf` [start, end) are the bytes `value` was decoded from. */
  matches(buf: Buffer, start: number, end: number): boolean {
    const length = end - start;
    if (length !== this.#length) return false;
    const bytes = this.#bytes;
    for (let i = 0; i < length; i++) if (bytes[i] !== buf[start + i]) return false;
    return true;
  }

  remember(buf: Buffer, start: number, end: number, value: T): void {
    if (end - start > LastDecoded.MAX_BYTES) return;
    buf.copy(this.#bytes, 0, start, end);
    this.#length = end - start;
    this.value = value;
  }
}

const LAST_HEADERS = new LastDecoded<Record<string, string> | null>(null);
const LAST_QUEUE = new LastDecoded('');

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
    const start = this.#off;
    this.skipVheaders();
    const end = this.#off;
    const seen = LAST_HEADERS.matches(this.#buf, start, end);
    const last = LAST_HEADERS.value;
    if (seen && last !== null) return { ...last };

    this.#off = start;
    const count = this.varint();
    // Each header is at least two empty strings: 2 x a one-byte length.
    this.#need(count * 2, `${count} headers`);
    const headers = this.#headers(count, () => this.vstring());
    // Kept once the same bytes come twice in a row, as a copy (the caller
    // may change its own): headers unlike the last record's cost a copy
    // of their bytes, not of the object too.
    LAST_HEADERS.remember(this.#buf, start, end, seen ? { ...headers } : null);
    return headers;
  }

  /** vstring() for a queue name, which a page of records shares. */
  vqueue(): string {
    const length = this.varint();
    this.#need(length, `a string of ${length} bytes`);
    const start = this.#off;
    this.#off += length;
    if (LAST_QUEUE.matches(this.#buf, start, this.#off)) return LAST_QUEUE.value;
    const queue = this.#buf.toString('utf8', start, this.#off);
    LAST_QUEUE.remember(this.#buf, start, this.#off, queue);
    return queue;
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
    // Bodies under 4 KiB share Buffer's 8 KiB pool, as an AMQP publish's
    // copy does (channel-publishing.ts): a body of its own cost an
    // ArrayBuffer and a backing store each, 0.6 us against 0.2 for 464 B,
    // and scavenges forced by external memory while a deep queue was read
    // back. A small body kept for days pins at most its pool's 8 KiB;
    // larger ones get their own memory either way.
    const body = Buffer.allocUnsafe(length);
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
