// The checkpoint file format: what the ledger held at a point in the log,
// so that a restart can load it and replay only the records after that
// point (checkpoint.ts). Layout (docs/storage.md has the longer version):
//
//   <dir>/checkpoint-<segment id, 20 digits>-<offset, 20 digits>.ckp
//
//   +--------+-------+-------+-----+-------+---------+--------+-----+
//   | header | meta  | queues| rows| rows  | changes | recent | end |
//   | 16 B   | frame | frame | ... | frame | ...     | ...    |     |
//   +--------+-------+-------+-----+-------+---------+--------+-----+
//
//   header   "USHERCKP" | u32le version | u32le crc32c of bytes 0..12
//   frame    u32le payload length | u32le crc32c(payload) | payload
//   payload  u8 kind, then:
//     1 meta     JSON {segmentId, offset, lastSeq, createdAt}: the log
//                position the checkpoint covers
//     2 queues   JSON [[name, settings], ...] declared queues
//     3 rows     (version 1 only) 3 zero bytes, u32le count, count x
//                f64le seq, then count x 4 u32le columns of the ledger
//                row (segment, offset, frame, queue: packed as in
//                ledger.ts); columns, not rows, so both are copied as
//                typed arrays (little-endian hosts only: see checkpoint.ts)
//     8 packed   (version 2) the same rows, each packed against the one
//                before it: checkpoint-rows.ts
//    10 recent   (version 2) kind 6 packed: UUIDs as 16 bytes, times as
//                differences: checkpoint-recent.ts
//     4 names    JSON [queue name, ...]: the queue index in a row's meta
//     5 changes  JSON [[seq, change], ...]
//     7 wide     JSON [[seq, [queue index, body bytes]], ...]: rows whose
//                queue column could not hold them
//     6 recent   JSON {queue, lastSeq, ids: [...], times: [...]}: a piece
//                of one queue's recent ids, oldest first
//     9 end      u32le rows, u32le frames before this one
//
// Version 2 (this build writes it) differs from version 1 only in the
// rows (kind 8 instead of 3) and the recent ids (kind 10, or 6 for ids
// with times that are not integers). Both are read. A file without its end
// frame, with a frame whose checksum fails, or of another version is not
// used: the loader falls back to an older
// checkpoint or to a full replay.

import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c } from './crc32c.js';
import { LEDGER_COLUMNS } from './ledger.js';

/** The version written; READABLE_VERSIONS are loaded. */
export const CHECKPOINT_VERSION = 2;
const READABLE_VERSIONS: readonly number[] = [1, 2];
export const CHECKPOINT_HEADER_BYTES = 16;
/** One row in a rows frame: f64 seq and the u32 columns. */
export const ROW_BYTES = 8 + 4 * LEDGER_COLUMNS;
/** Kind, padding and count before a rows frame's seqs (8-aligned). */
export const ROWS_HEADER_BYTES = 8;
export const FRAME_HEADER_BYTES = 8;

const MAGIC = Buffer.from('USHERCKP', 'latin1');
/** No frame we write comes near this; a larger length is damage. */
const MAX_FRAME_BYTES = 64 * 1024 * 1024;
const NAME_PATTERN = /^checkpoint-(\d{20})-(\d{20})\.ckp$/;

export const enum FrameKind {
  Meta = 1,
  Queues = 2,
  Rows = 3,
  Names = 4,
  Changes = 5,
  Recent = 6,
  Wide = 7,
  PackedRows = 8,
  End = 9,
  PackedRecent = 10,
}

/** Where in the log a checkpoint's state ends: replay resumes here. */
export interface LogPosition {
  segmentId: number;
  offset: number;
}

export interface CheckpointMeta extends LogPosition {
  /** Highest seq allocated when the checkpoint began. */
  lastSeq: number;
  createdAt: number;
}

export interface CheckpointFile extends LogPosition {
  path: string;
}

export function checkpointPath(dir: string, position: LogPosition): string {
  const pad = (n: number) => String(n).padStart(20, '0');
  return join(dir, `checkpoint-${pad(position.segmentId)}-${pad(position.offset)}.ckp`);
}

/** Checkpoint files in `dir`, newest (furthest in the log) first. */
export function listCheckpoints(names: readonly string[], dir: string): CheckpointFile[] {
  const files: CheckpointFile[] = [];
  for (const name of names) {
    const match = NAME_PATTERN.exec(name);
    if (match === null) continue;
    files.push({ path: join(dir, name), segmentId: Number(match[1]), offset: Number(match[2]) });
  }
  return files.sort((a, b) => b.segmentId - a.segmentId || b.offset - a.offset);
}

export function isCheckpointTemp(name: string): boolean {
  return name.startsWith('checkpoint-') && name.endsWith('.ckp.tmp');
}

/** A file header; a version other than the current one is for tests. */
export function encodeHeader(version = CHECKPOINT_VERSION): Buffer {
  const header = Buffer.alloc(CHECKPOINT_HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32LE(version, 8);
  header.writeUInt32LE(crc32c(header.subarray(0, 12)), 12);
  return header;
}

/**
 * Seals a frame built in place: `frame` holds FRAME_HEADER_BYTES of room,
 * then the payload. Returns `frame`.
 */
export function sealInPlace(frame: Buffer): Buffer {
  const payload = frame.subarray(FRAME_HEADER_BYTES);
  frame.writeUInt32LE(payload.length, 0);
  frame.writeUInt32LE(crc32c(payload), 4);
  return frame;
}

/** A frame around `payload`, whose first byte is its kind. */
export function sealFrame(payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  frame.writeUInt32LE(crc32c(payload), 4);
  payload.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

export function jsonFrame(kind: FrameKind, value: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(value), 'utf8');
  const payload = Buffer.allocUnsafe(1 + json.length);
  payload[0] = kind;
  json.copy(payload, 1);
  return sealFrame(payload);
}

export function endFrame(rows: number, frames: number): Buffer {
  const payload = Buffer.alloc(9);
  payload[0] = FrameKind.End;
  payload.writeUInt32LE(rows, 1);
  payload.writeUInt32LE(frames, 5);
  return sealFrame(payload);
}

/** Why a checkpoint cannot be used; the loader logs it and moves on. */
export class BadCheckpoint extends Error {}

/**
 * Reads a checkpoint frame by frame. Every frame's checksum is checked
 * before it is handed out; the first bad one throws BadCheckpoint.
 */
export class CheckpointReader {
  #position = CHECKPOINT_HEADER_BYTES;
  #frames = 0;

  private constructor(
    private readonly file: FileHandle,
    private readonly size: number,
    /** The format version in the header: one of READABLE_VERSIONS. */
    readonly version: number,
  ) {}

  static async open(path: string): Promise<CheckpointReader> {
    const file = await open(path, 'r');
    try {
      const { size } = await file.stat();
      const header = Buffer.alloc(CHECKPOINT_HEADER_BYTES);
      const { bytesRead } = await file.read(header, 0, header.length, 0);
      if (bytesRead < header.length) throw new BadCheckpoint('shorter than its header');
      if (!header.subarray(0, 8).equals(MAGIC)) throw new BadCheckpoint('not a checkpoint file');
      if (crc32c(header.subarray(0, 12)) !== header.readUInt32LE(12)) {
        throw new BadCheckpoint('header checksum mismatch');
      }
      const version = header.readUInt32LE(8);
      if (!READABLE_VERSIONS.includes(version)) {
        throw new BadCheckpoint(
          `format version ${version}; this build reads versions ${READABLE_VERSIONS.join(', ')}`,
        );
      }
      return new CheckpointReader(file, size, version);
    } catch (err) {
      await file.close();
      throw err;
    }
  }

  /** Frames read so far. */
  get frames(): number {
    return this.#frames;
  }

  /** The next frame's payload (kind byte first); throws at the end of file. */
  async next(): Promise<Buffer> {
    const at = this.#position;
    if (at + FRAME_HEADER_BYTES > this.size) {
      throw new BadCheckpoint(`ends at ${this.size} bytes without an end frame`);
    }
    const head = Buffer.alloc(FRAME_HEADER_BYTES);
    await this.#readFully(head, at);
    const length = head.readUInt32LE(0);
    if (length === 0 || length > MAX_FRAME_BYTES || at + FRAME_HEADER_BYTES + length > this.size) {
      throw new BadCheckpoint(`frame at ${at} has a bad length ${length} (file is cut short?)`);
    }
    // Its own memory, 8-aligned, so rows can be viewed as typed arrays.
    const payload = Buffer.allocUnsafeSlow(length);
    await this.#readFully(payload, at + FRAME_HEADER_BYTES);
    if (crc32c(payload) !== head.readUInt32LE(4)) {
      throw new BadCheckpoint(`frame at ${at} has a checksum mismatch`);
    }
    this.#position = at + FRAME_HEADER_BYTES + length;
    this.#frames++;
    return payload;
  }

  close(): Promise<void> {
    return this.file.close();
  }

  async #readFully(buf: Buffer, position: number): Promise<void> {
    let filled = 0;
    while (filled < buf.length) {
      const wanted = buf.length - filled;
      const { bytesRead } = await this.file.read(buf, filled, wanted, position + filled);
      if (bytesRead === 0) throw new BadCheckpoint(`ends inside the frame at ${position}`);
      filled += bytesRead;
    }
  }
}

/** The JSON after a payload's kind byte; BadCheckpoint if it does not parse. */
export function parseJson(payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString('utf8', 1));
  } catch {
    throw new BadCheckpoint(`frame of kind ${payload[0]} holds no valid JSON`);
  }
}
