// Ledger rows in a checkpoint of format version 2, packed (issue #3).
// Version 1 wrote each row whole: 8 bytes of seq and four u32 columns,
// 24 bytes a live message, and a checkpoint of ten million of them (240
// MB) cost a fifth of the log's own bytes while a backlog grew. Most of a
// row follows from the row before it: seqs come one after another, the
// segment is the same, the frame starts where the previous one ended
// (or a settle record later), and the frame and queue columns repeat. A
// packed row is one byte saying which fields match that guess, then the
// fields that do not, as varints:
//
//   rows frame (kind 8)
//   +------+---------+------------+----------------------------------+
//   | kind | 3 zero  | u32le rows | rows x packed row                |
//   +------+---------+------------+----------------------------------+
//
//   packed row
//   +----------+------------------------------------------------------+
//   | u8 same  | varint fields, in this order, for each bit NOT set:  |
//   +----------+------------------------------------------------------+
//     bit 0 SEQ      seq = previous seq + 1;   else varint(seq - previous - 1)
//     bit 1 SEGMENT  segment = previous;       else zigzag(segment - previous)
//     bit 2 OFFSET   offset = previous offset + previous frame bytes, in the
//                    same segment;             else zigzag(offset - that guess)
//     bit 3 FRAME    frame column = previous;  else zigzag(frame - previous)
//     bit 4 QUEUE    queue column = previous;  else zigzag(queue - previous)
//
// varint: LEB128, 7 bits a byte, low first, computed with arithmetic (seqs
// reach 2^53, beyond 32-bit shifts). zigzag: 2d for d >= 0, -2d - 1 else.
// Every frame starts from a row of seq -1 and columns 0 (so a seq of 0
// packs too), and so decodes on its own.
//
// A ticket-event backlog packs to one byte a row; a mixed log, where
// settles, retries and other queues' records lie between a queue's
// publishes, to three to six.

import { BadCheckpoint, FRAME_HEADER_BYTES, ROWS_HEADER_BYTES } from './checkpoint-file.js';
import { LEDGER_COLUMNS } from './ledger.js';
import type { RowRun } from './seq-table.js';

const SEQ = 1;
const SEGMENT = 2;
const OFFSET = 4;
const FRAME = 8;
const QUEUE = 16;
const KNOWN_BITS = SEQ | SEGMENT | OFFSET | FRAME | QUEUE;

/** Bits 0-26 of the frame column: the frame's length (ledger.ts). */
const FRAME_LENGTH_MASK = 0x07ff_ffff;
/** A varint of a value below 2^56, the most a seq or zigzag needs. */
const MAX_VARINT_BYTES = 8;
/** Same byte, seq, four zigzagged u32 differences of up to 5 bytes. */
export const MAX_PACKED_ROW_BYTES = 1 + MAX_VARINT_BYTES + 4 * 5;
const U32_MAX = 0xffff_ffff;

/**
 * Packs rows, in increasing seq order, into one reused buffer; seal()
 * hands out the frame and starts the next one.
 */
export class RowPacker {
  readonly #buffer: Buffer;
  readonly #start = FRAME_HEADER_BYTES + ROWS_HEADER_BYTES;
  #at = this.#start;
  #count = 0;
  #seq = -1;
  #segment = 0;
  #offset = 0;
  #frame = 0;
  #queue = 0;

  constructor(readonly maxRows: number) {
    this.#buffer = Buffer.allocUnsafeSlow(this.#start + maxRows * MAX_PACKED_ROW_BYTES);
  }

  get count(): number {
    return this.#count;
  }

  /** Seq of the last row added since the last take(), -1 if none. */
  get lastSeq(): number {
    return this.#seq;
  }

  /**
   * Adds the live rows of `run` (a ledger's, LEDGER_COLUMNS wide) in
   * order until maxRows are in; false once they are. What add() does a
   * row, with the packer's state in locals for the run: a call a row
   * cost ~15 ns, and a checkpoint packs every live row.
   */
  addRun(run: RowRun): boolean {
    const { seqs, cols, alive, to } = run;
    const buf = this.#buffer;
    const room = this.maxRows - this.#count;
    let added = 0;
    let at = this.#at;
    let last = this.#seq;
    let lastSegment = this.#segment;
    let lastOffset = this.#offset;
    let lastFrame = this.#frame;
    let lastQueue = this.#queue;
    for (let i = run.from; i < to && added < room; i++) {
      if (alive[i] === 0) continue;
      const seq = seqs.at(i);
      if (!(seq > last)) throw new Error(`row ${seq} after ${last}`);
      const base = i * LEDGER_COLUMNS;
      const segment = cols[base];
      const offset = cols[base + 1];
      const frame = cols[base + 2];
      const queue = cols[base + 3];
      const sameSegment = segment === lastSegment;
      const guess = sameSegment ? lastOffset + (lastFrame & FRAME_LENGTH_MASK) : 0;
      const sameAt = at;
      let same = 0;
      at++;

      if (seq === last + 1) same |= SEQ;
      else at = putVarint(buf, at, seq - last - 1);
      if (sameSegment) same |= SEGMENT;
      else at = putVarint(buf, at, zigzag(segment - lastSegment));
      if (offset === guess) same |= OFFSET;
      else at = putVarint(buf, at, zigzag(offset - guess));
      if (frame === lastFrame) same |= FRAME;
      else at = putVarint(buf, at, zigzag(frame - lastFrame));
      if (queue === lastQueue) same |= QUEUE;
      else at = putVarint(buf, at, zigzag(queue - lastQueue));
      buf[sameAt] = same;

      added++;
      last = seq;
      lastSegment = segment;
      lastOffset = offset;
      lastFrame = frame;
      lastQueue = queue;
    }
    this.#at = at;
    this.#count += added;
    this.#seq = last;
    this.#segment = lastSegment;
    this.#offset = lastOffset;
    this.#frame = lastFrame;
    this.#queue = lastQueue;
    return this.#count < this.maxRows;
  }

  /**
   * The frame of the rows added since the last seal, header room included
   * (to be sealed by the caller): a view of the packer's buffer, valid
   * until the next add().
   */
  take(kind: number): Buffer {
    const buf = this.#buffer;
    buf.fill(0, FRAME_HEADER_BYTES, this.#start);
    buf[FRAME_HEADER_BYTES] = kind;
    buf.writeUInt32LE(this.#count, FRAME_HEADER_BYTES + 4);
    const frame = buf.subarray(0, this.#at);
    this.#at = this.#start;
    this.#count = 0;
    this.#seq = -1;
    this.#segment = 0;
    this.#offset = 0;
    this.#frame = 0;
    this.#queue = 0;
    return frame;
  }
}

/**
 * Calls `visit` with each row of a packed rows payload (kind byte first),
 * in order; `columns` is reused. Returns the row count. Throws
 * BadCheckpoint for any row that does not decode to the count the frame
 * names, seqs not increasing or columns beyond u32.
 */
export function unpackRows(
  payload: Buffer,
  visit: (seq: number, columns: readonly number[]) => void,
): number {
  if (payload.length < ROWS_HEADER_BYTES) throw new BadCheckpoint('a rows frame is too short');
  const count = payload.readUInt32LE(4);
  const columns = new Array<number>(LEDGER_COLUMNS).fill(0);
  const cursor = { at: ROWS_HEADER_BYTES };
  let seq = -1;
  for (let i = 0; i < count; i++) {
    if (cursor.at >= payload.length) throw new BadCheckpoint(`a rows frame ends at row ${i}`);
    const same = payload[cursor.at++];
    if ((same & ~KNOWN_BITS) !== 0) throw new BadCheckpoint(`a packed row has flags ${same}`);
    const guess = columns[1] + (columns[2] & FRAME_LENGTH_MASK);

    seq += (same & SEQ) !== 0 ? 1 : readVarint(payload, cursor) + 1;
    const segment = (same & SEGMENT) !== 0 ? columns[0] : columns[0] + readZigzag(payload, cursor);
    const base = segment === columns[0] ? guess : 0;
    columns[1] = (same & OFFSET) !== 0 ? base : base + readZigzag(payload, cursor);
    columns[0] = segment;
    if ((same & FRAME) === 0) columns[2] += readZigzag(payload, cursor);
    if ((same & QUEUE) === 0) columns[3] += readZigzag(payload, cursor);
    for (let c = 0; c < LEDGER_COLUMNS; c++) {
      const value = columns[c];
      if (!(value >= 0 && value <= U32_MAX)) {
        throw new BadCheckpoint(`packed row ${i} has column ${c} = ${value}`);
      }
    }
    if (seq > Number.MAX_SAFE_INTEGER) throw new BadCheckpoint(`packed row ${i} has seq ${seq}`);
    visit(seq, columns);
  }
  if (cursor.at !== payload.length) {
    throw new BadCheckpoint(`${payload.length - cursor.at} bytes after the last packed row`);
  }
  return count;
}

export function zigzag(difference: number): number {
  return difference >= 0 ? 2 * difference : -2 * difference - 1;
}

export function putVarint(buf: Buffer, at: number, value: number): number {
  while (value >= 0x80) {
    buf[at++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  buf[at++] = value;
  return at;
}

export function readVarint(buf: Buffer, cursor: { at: number }): number {
  let value = 0;
  let scale = 1;
  for (let bytes = 0; bytes < MAX_VARINT_BYTES; bytes++) {
    if (cursor.at >= buf.length) throw new BadCheckpoint('a packed row ends inside a varint');
    const byte = buf[cursor.at++];
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return value;
    scale *= 0x80;
  }
  throw new BadCheckpoint(`a varint longer than ${MAX_VARINT_BYTES} bytes`);
}

export function readZigzag(buf: Buffer, cursor: { at: number }): number {
  const z = readVarint(buf, cursor);
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}
