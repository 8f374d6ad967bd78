// A queue's recent ids in a checkpoint of format version 2, packed (issue
// #3). Each queue keeps up to 100,000 ids (before segment format 3 the
// log did not tell a producer's id from a generated UUID), and as JSON with
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
import type { RecentCopy, RecentSnapshot } from './ledger.js';
import { UUID_BYTES, putUuid } from './uuid-bytes.js';

/**
 * What packRecent takes: a piece as a checkpoint holds it, or a slice of
 * the ledger's copy, whose UUIDs are already bytes.
 */
export type RecentPiece = RecentSnapshot | RecentCopy;

const HEAD_BYTES = 16;
const NO_UUIDS = new Uint8Array(0);

/** Whether packRecent can take `piece`: every time a safe integer. */
export function canPackRecent(piece: RecentPiece): boolean {
  // Plain loops over the times, here and in packRecent: a callback or an
  // iterator boxed each double, ~30 bytes an id a checkpoint.
  const times = piece.times;
  for (let i = 0; i < times.length; i++) {
    if (!Number.isSafeInteger(times[i])) return false;
  }
  return true;
}

/** A sealed kind-10 frame of `piece` (see canPackRecent). */
export function packRecent(piece: RecentPiece): Buffer {
  const { ids, times } = piece;
  const queue = Buffer.from(piece.queue, 'utf8');
  // A UTF-16 code unit takes at most 3 bytes of UTF-8: a bound without
  // measuring each of the 100,000 ids.
  let bound = FRAME_HEADER_BYTES + HEAD_BYTES + 5 + queue.length + ids.length * 10;
  for (let i = 0; i < ids.length; i++) bound += 1 + 5 + 3 * (ids[i]?.length ?? UUID_BYTES);
  const buf = Buffer.allocUnsafe(bound);

  buf.fill(0, FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + 4);
  buf[FRAME_HEADER_BYTES] = FrameKind.PackedRecent;
  buf.writeUInt32LE(ids.length, FRAME_HEADER_BYTES + 4);
  buf.writeDoubleLE(piece.lastSeq, FRAME_HEADER_BYTES + 8);
  let at = putVarint(buf, FRAME_HEADER_BYTES + HEAD_BYTES, queue.length);
  at += queue.copy(buf, at);
  const uuids = 'uuids' in piece ? piece.uuids : NO_UUIDS;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id === undefined) {
      // A UUID the ledger keeps as bytes (RecentCopy).
      buf[at++] = 0;
      for (let k = 0, from = UUID_BYTES * i; k < UUID_BYTES; k++) buf[at++] = uuids[from + k];
      continue;
    }
    // Tried as a UUID first; one that is not is written over (putUuid).
    const afterUuid = putUuid(buf, at + 1, id);
    if (afterUuid >= 0) {
      buf[at] = 0;
      at = afterUuid;
    } else {
      buf[at++] = 1;
      const length = Buffer.byteLength(id, 'utf8');
      at = putVarint(buf, at, length);
      at += buf.write(id, at, length, 'utf8');
    }
  }
  let previous = 0;
  for (let i = 0; i < times.length; i++) {
    at = putVarint(buf, at, zigzag(times[i] - previous));
    previous = times[i];
  }
  return sealInPlace(buf.subarray(0, at));
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
