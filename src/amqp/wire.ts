// Primitive AMQP types on a Buffer: a bounds-checked Reader for decoding
// and size/write helpers for encoding. Everything is big-endian. Encoding
// is two passes: sizes first (which also validates), then writes into a
// buffer of exactly that size, so writers assume valid input.

import { AmqpEncodeError, AmqpSyntaxError } from './errors.js';

/**
 * The last short string decoded at one place, kept with its bytes, for a
 * field that mostly repeats (a publish's exchange and routing key): when
 * the bytes match, the text is the one made before. Decoding the routing
 * key anew for every message was a tenth of the cost of reading a publish.
 */
export class ShortstrCache {
  #bytes = Buffer.alloc(255);
  #length = -1;
  #text = '';

  /** buf[start, start + length) as UTF-8 text, malformed sequences as U+FFFD. */
  text(buf: Buffer, start: number, length: number): string {
    if (length === 0) return '';
    if (length === this.#length && this.#matches(buf, start, length)) return this.#text;
    this.#text = buf.toString('utf8', start, start + length);
    buf.copy(this.#bytes, 0, start, start + length);
    this.#length = length;
    return this.#text;
  }

  #matches(buf: Buffer, start: number, length: number): boolean {
    const bytes = this.#bytes;
    for (let i = 0; i < length; i++) if (buf[start + i] !== bytes[i]) return false;
    return true;
  }
}

/** 2^53 - 1 split as hi * 2^32 + lo: hi may be at most this. */
const SAFE_HIGH_WORD = 0x1f_ffff;

/**
 * Reads primitives from `buf` between `pos` and `end`, refusing to read
 * past `end` with a SYNTAX_ERROR that names what was being read. Honours
 * the buffer's own byteOffset: it only ever uses Buffer methods.
 */
export class Reader {
  buf: Buffer;
  pos: number;
  end: number;
  /** Where reading began: errors give offsets from here. */
  start: number;
  /** Prefix for error messages, e.g. "basic.publish". */
  context = '';
  classId = 0;
  methodId = 0;

  constructor(buf: Buffer, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    this.start = pos;
  }

  /**
   * Points the reader at another payload, as a new one would be. For a
   * decoder that reads one payload at a time: a reader made for each was
   * three a message (its method, its content header and the consumer's
   * ack), nearly half of what decoding them allocated.
   */
  reset(buf: Buffer, pos: number, end: number): this {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    this.start = pos;
    this.context = '';
    this.classId = 0;
    this.methodId = 0;
    return this;
  }

  get left(): number {
    return this.end - this.pos;
  }

  /** Throws unless `n` more bytes are there; `what` names the field. */
  need(n: number, what: string): void {
    if (this.end - this.pos < n) {
      throw this.error(
        `${what} needs ${n} bytes at offset ${this.pos - this.start}, ` +
          `${this.end - this.pos} left`,
      );
    }
  }

  error(message: string): AmqpSyntaxError {
    const where = this.context === '' ? '' : `${this.context}: `;
    return new AmqpSyntaxError(where + message, {
      classId: this.classId,
      methodId: this.methodId,
    });
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++];
  }

  u16(what: string): number {
    this.need(2, what);
    const value = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return value;
  }

  u32(what: string): number {
    this.need(4, what);
    const value = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return value;
  }

  /** A u64 as a number; refuses values above Number.MAX_SAFE_INTEGER. */
  safeU64(what: string): number {
    this.need(8, what);
    const high = this.buf.readUInt32BE(this.pos);
    const low = this.buf.readUInt32BE(this.pos + 4);
    if (high > SAFE_HIGH_WORD) {
      throw this.error(
        `${what} ${this.buf.readBigUInt64BE(this.pos)} exceeds ` +
          `${Number.MAX_SAFE_INTEGER}`,
      );
    }
    this.pos += 8;
    return high * 2 ** 32 + low;
  }

  /** A shortstr as UTF-8 text; malformed sequences become U+FFFD. */
  shortstr(what: string): string {
    const length = this.u8(what);
    this.need(length, what);
    const start = this.pos;
    this.pos += length;
    return length === 0 ? '' : this.buf.toString('utf8', start, this.pos);
  }

  /** A shortstr as `cache` reads it: the same text as shortstr(). */
  repeatedShortstr(cache: ShortstrCache, what: string): string {
    const length = this.u8(what);
    this.need(length, what);
    const start = this.pos;
    this.pos += length;
    return cache.text(this.buf, start, length);
  }

  /** A length-prefixed run of bytes, copied out of the frame. */
  longstr(what: string): Buffer {
    const length = this.u32(what);
    return Buffer.from(this.take(length, what));
  }

  /** A view of the next `length` bytes. */
  take(length: number, what: string): Buffer {
    this.need(length, what);
    const start = this.pos;
    this.pos += length;
    return this.buf.subarray(start, this.pos);
  }
}

/** Byte size of a shortstr (length octet included); throws over 255. */
export function shortstrSize(value: string, field: string): number {
  if (typeof value !== 'string') {
    throw new AmqpEncodeError(field, `expected a string, got ${typeof value}`);
  }
  const length = Buffer.byteLength(value);
  if (length > 255) {
    throw new AmqpEncodeError(
      field,
      `shortstr is ${length} bytes, the limit is 255: ` +
        JSON.stringify(value.slice(0, 40)),
    );
  }
  return 1 + length;
}

/**
 * Shortstrs up to this many characters are written by a loop while they
 * are ASCII: for a consumer tag or a routing key, a call into Buffer.write
 * cost more than the bytes it copied.
 */
const LOOP_WRITE_LIMIT = 32;

export function writeShortstr(
  buf: Buffer,
  offset: number,
  value: string,
): number {
  if (value.length <= LOOP_WRITE_LIMIT) {
    let i = 0;
    for (; i < value.length; i++) {
      const code = value.charCodeAt(i);
      if (code > 0x7f) break;
      buf[offset + 1 + i] = code;
    }
    // All ASCII: one byte a character. Otherwise Buffer.write starts over.
    if (i === value.length) {
      buf[offset] = i;
      return offset + 1 + i;
    }
  }
  const length = value.length === 0 ? 0 : buf.write(value, offset + 1);
  buf[offset] = length;
  return offset + 1 + length;
}

/** Byte size of a longstr (4-byte length included). */
export function longstrSize(value: Buffer, field: string): number {
  if (!Buffer.isBuffer(value)) {
    throw new AmqpEncodeError(field, 'expected a Buffer');
  }
  return 4 + value.length;
}

export function writeLongstr(
  buf: Buffer,
  offset: number,
  value: Buffer,
): number {
  const length = value.copy(buf, offset + 4);
  buf.writeUInt32BE(length, offset);
  return offset + 4 + length;
}

/** Checks `value` is an integer in [min, max] for an encoder. */
export function checkInteger(
  value: number,
  min: number,
  max: number,
  field: string,
): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new AmqpEncodeError(
      field,
      `expected an integer in [${min}, ${max}], got ${String(value)}`,
    );
  }
}

/** Writes a u64 given as a safe non-negative integer, by arithmetic. */
export function writeSafeU64(
  buf: Buffer,
  offset: number,
  value: number,
): number {
  const high = Math.floor(value / 2 ** 32);
  buf.writeUInt32BE(high, offset);
  buf.writeUInt32BE(value - high * 2 ** 32, offset + 4);
  return offset + 8;
}
