// A queue's recent ids in a checkpoint of format version 2, packed (issue
// #3). Each queue keeps up to 100,000 ids (the log does not tell a
// producer's id from a generated UUID, recovery.ts), and as JSON with
// their times they took 5.5 MB a queue in every checkpoint: with rows
// packed (checkpoint-rows.ts) more than the rows of a million messages.
// Packed, a generated id is its 16 bytes and a time the difference from
// the one before it:
//
//   recent frame (kind 10)
//   +------+--------+-----------+-------------+-------+------------+--------------+
//   | kind | 3 zero | u32le ids | f64le       | queue | ids x id   | ids x time   |
//   |      |        |           | lastSeq     |       |            |              |
//   +------+--------+-----------+-------------+-------+------------+--------------+
//
//   queue  varint byte length, UTF-8
//   id     u8 0, then the 16 bytes of a UUID written in lowercase 8-4-4-4-12
//          hex; or u8 1, varint byte length, UTF-8
//   time   zigzag varint of the time minus the one before (the first: minus 0)
//
// Varints as in checkpoint-rows.ts. A piece whose times are not all
// integers goes out as JSON (kind 6) instead, which version 2 still reads.

import { BadCheckpoint, FRAME_HEADER_BYTES, FrameKind, sealInPlace } from './checkpoint-file.js';
import { putVarint, readVarint, readZigzag, zigzag } from './checkpoint-rows.js';
import type { RecentSnapshot } from './ledger.js';

const UUID_BYTES = 16;
const HEAD_BYTES = 16;

/** Whether packRecent can take `piece`: every time a safe integer. */
export function canPackRecent(piece: RecentSnapshot): boolean {
  return piece.times.every((time) => Number.isSafeInteger(time));
}

/** A sealed kind-10 frame of `piece` (see canPackRecent). */
export function packRecent(piece: RecentSnapshot): Buffer {
  const { ids, times } = piece;
  const queue = Buffer.from(piece.queue, 'utf8');
  let bound = FRAME_HEADER_BYTES + HEAD_BYTES + 5 + queue.length + ids.length * 10;
  // UTF-8 takes at most 3 bytes per UTF-16 unit: no native call per id.
  for (const id of ids) bound += 1 + 5 + 3 * id.length;
  const buf = Buffer.allocUnsafe(bound);

  buf.fill(0, FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + 4);
  buf[FRAME_HEADER_BYTES] = FrameKind.PackedRecent;
  buf.writeUInt32LE(ids.length, FRAME_HEADER_BYTES + 4);
  buf.writeDoubleLE(piece.lastSeq, FRAME_HEADER_BYTES + 8);
  let at = putVarint(buf, FRAME_HEADER_BYTES + HEAD_BYTES, queue.length);
  at += queue.copy(buf, at);
  for (const id of ids) {
    const uuidEnd = putUuid(buf, at + 1, id);
    if (uuidEnd >= 0) {
      buf[at] = 0;
      at = uuidEnd;
    } else {
      buf[at++] = 1;
      const length = Buffer.byteLength(id, 'utf8');
      at = putVarint(buf, at, length);
      at += buf.write(id, at, length, 'utf8');
    }
  }
  let previous = 0;
  for (const time of times) {
    at = putVarint(buf, at, zigzag(time - previous));
    previous = time;
  }
  return sealInPlace(buf.subarray(0, at));
}

/**
 * Writes `id` at `at` as its 16 bytes if it is a UUID in lowercase
 * 8-4-4-4-12 hex, and returns the offset after them; -1 if it is not (the
 * bytes already written are then to be written over). One pass over the
 * text: a regular expression, then a copy without dashes and a hex write,
 * cost about a tenth of the broker's CPU in a durable publish, as every
 * checkpoint packs up to 100,000 ids of each queue.
 */
function putUuid(buf: Buffer, at: number, id: string): number {
  if (id.length !== 36) return -1;
  let out = at;
  for (let i = 0; i < 36; ) {
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (id.charCodeAt(i) !== 0x2d) return -1;
      i++;
      continue;
    }
    // Runs of hex digits have even lengths: a pair never spans a dash.
    const high = lowerHexValue(id.charCodeAt(i));
    const low = lowerHexValue(id.charCodeAt(i + 1));
    if (high < 0 || low < 0) return -1;
    buf[out++] = (high << 4) | low;
    i += 2;
  }
  return out;
}

/** 0-15 for '0'-'9' and 'a'-'f'; -1 for anything else, upper case included. */
function lowerHexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

/** The piece in a kind-10 payload (kind byte first); BadCheckpoint if malformed. */
export function unpackRecent(payload: Buffer): RecentSnapshot {
  if (payload.length < HEAD_BYTES) throw new BadCheckpoint('a recent-ids frame is too short');
  const count = payload.readUInt32LE(4);
  const lastSeq = payload.readDoubleLE(8);
  const cursor = { at: HEAD_BYTES };
  const queue = readString(payload, cursor);
  // Each id takes two bytes at least, each time one.
  if (count * 3 > payload.length - cursor.at) {
    throw new BadCheckpoint(`a recent-ids frame names ${count} ids in ${payload.length} bytes`);
  }
  const ids = new Array<string>(count);
  for (let i = 0; i < count; i++) {
    const tag = payload[cursor.at++];
    if (tag === 0) {
      ids[i] = uuidAt(payload, cursor);
    } else if (tag === 1) {
      ids[i] = readString(payload, cursor);
    } else {
      throw new BadCheckpoint(`recent id ${i} has tag ${tag}`);
    }
  }
  const times = new Array<number>(count);
  let time = 0;
  for (let i = 0; i < count; i++) {
    time += readZigzag(payload, cursor);
    times[i] = time;
  }
  if (cursor.at !== payload.length) {
    throw new BadCheckpoint(`${payload.length - cursor.at} bytes after the last recent id`);
  }
  return { queue, lastSeq, ids, times };
}

function readString(buf: Buffer, cursor: { at: number }): string {
  const length = readVarint(buf, cursor);
  if (length > buf.length - cursor.at) throw new BadCheckpoint('a recent id runs past its frame');
  const text = buf.toString('utf8', cursor.at, cursor.at + length);
  cursor.at += length;
  return text;
}

function uuidAt(buf: Buffer, cursor: { at: number }): string {
  if (UUID_BYTES > buf.length - cursor.at) throw new BadCheckpoint('a UUID runs past its frame');
  const hex = buf.toString('hex', cursor.at, cursor.at + UUID_BYTES);
  cursor.at += UUID_BYTES;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-` +
    `${hex.slice(16, 20)}-${hex.slice(20)}`;
}
