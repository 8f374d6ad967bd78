// Segment files: their names, the header each starts with, and the
// recovery read that brings one back, damage and all.
//
//   <dir>/
//     00000000000000000041.log    oldest segment still needed
//     00000000000000000042.log
//     00000000000000000043.log    active: the only one written to
//
//   segment file
//   +--------+--------------------+--------------------+-------+-----
//   | header | queue-declared ... | frame              | frame | ...
//   | 24 B   | one per live queue | (see codec.ts)     |       |
//   +--------+--------------------+--------------------+-------+-----
//
//   header
//   0          8          12              20          24
//   +----------+----------+---------------+-----------+
//   | magic    | version  | seq floor     | crc32c    |
//   | USHERLOG | u32le 3  | f64le         | of 0..20  |
//   +----------+----------+---------------+-----------+
//
// Version 2 segments may hold compact `published` records (type 7,
// codec.ts); version 1 ones hold only type 3. Version 3 adds a flag to
// type 7: the broker made the id. This build reads all three and writes
// 3; a start always begins a new segment, so an older file is never
// appended to. An older build refuses a newer segment rather than
// misread it.
//
// The seq floor is the highest seq allocated when the segment was created.
// It keeps seqs increasing across restarts even after every segment that
// named the highest seqs has been deleted.

import { type FileHandle, lstat, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreUnavailableError } from '../errors.js';
import { crc32c } from './crc32c.js';
import { FrameDecoder } from './frame-decoder.js';
import type { LogRecord } from './records.js';
import { Resync } from './resync.js';

export const SEGMENT_HEADER_BYTES = 24;
export const FORMAT_VERSION = 3;
const READABLE_VERSIONS: readonly number[] = [1, 2, 3];

const MAGIC = Buffer.from('USHERLOG', 'latin1');
const NAME_PATTERN = /^(\d{20})\.log$/;
/** A segment being made (active-segment.ts createSegment) is written under its name plus this. */
export const NEW_SEGMENT_SUFFIX = '.new';
const NEW_NAME_PATTERN = /^\d{20}\.log\.new$/;
/** A dead segment renamed out of the log before it is cut and unlinked (dead-segments.ts). */
export const RETIRED_SUFFIX = '.dead';
const RETIRED_NAME_PATTERN = /^\d{20}\.log\.dead$/;
const READ_CHUNK_BYTES = 1024 * 1024;

export interface ReadOptions {
  /**
   * false: a `published` body handed to onRecord is a view into the read
   * buffer, valid only during the call (for a caller that keeps only its
   * size). Default true: a copy of its own.
   */
  copyBodies?: boolean;
  /**
   * Read frames from this offset on, a frame boundary past the header
   * (a checkpoint's position); the header is still checked. Default: just
   * after the header.
   */
  from?: number;
}

/** Called for each whole frame read: its record, size and file offset. */
export type OnRecord = (record: LogRecord, frameBytes: number, offset: number) => void;

export interface SegmentFile {
  id: number;
  path: string;
}

export function segmentPath(dir: string, id: number): string {
  return join(dir, `${String(id).padStart(20, '0')}.log`);
}

/** The segment files in `dir`, oldest first. Other files are ignored. */
export async function listSegments(dir: string): Promise<SegmentFile[]> {
  const segments: SegmentFile[] = [];
  for (const name of await readdir(dir)) {
    const match = NAME_PATTERN.exec(name);
    if (match) segments.push({ id: Number(match[1]), path: join(dir, name) });
  }
  return segments.sort((a, b) => a.id - b.id);
}

/**
 * Segments a crash left half made (under NEW_SEGMENT_SUFFIX): they hold
 * nothing a batch wrote, since a segment is used only once it is whole.
 */
export function listUnfinishedSegments(dir: string): Promise<string[]> {
  return pathsMatching(dir, NEW_NAME_PATTERN);
}

/**
 * Dead segments a crash left while they were being deleted (under
 * RETIRED_SUFFIX): out of the log, and possibly cut short, so never read.
 */
export function listRetiredSegments(dir: string): Promise<string[]> {
  return pathsMatching(dir, RETIRED_NAME_PATTERN);
}

async function pathsMatching(dir: string, pattern: RegExp): Promise<string[]> {
  return (await readdir(dir)).filter((name) => pattern.test(name)).map((name) => join(dir, name));
}

export function encodeSegmentHeader(seqFloor: number): Buffer {
  const header = Buffer.alloc(SEGMENT_HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32LE(FORMAT_VERSION, 8);
  header.writeDoubleLE(seqFloor, 12);
  header.writeUInt32LE(crc32c(header.subarray(0, 20)), 20);
  return header;
}

/** A stretch of a segment in which recovery found no frame it could read. */
export interface Damage {
  offset: number;
  bytes: number;
  /** What was wrong where the stretch starts. */
  reason: string;
}

export interface SegmentScan {
  fileBytes: number;
  /** From the header; undefined if the header is missing or zeroed. */
  seqFloor: number | undefined;
  /**
   * End of the last whole frame, else of a sound header, else 0. A torn
   * tail starts here.
   */
  validBytes: number;
  /** Stretches skipped, in file order. Only the last can reach the end. */
  damage: Damage[];
  /** The search in the last stretch gave up early: frames may lie in it. */
  gaveUp: boolean;
}

/**
 * Reads one segment, calling `onRecord` for each valid frame in order.
 * At a torn or corrupt frame it searches forward for the next whole
 * frame (see resync.ts) and goes on from there, so it returns every
 * frame the file still holds and reports the stretches in between. It
 * changes nothing on disk; what to do with the damage is the caller's
 * call. A header that is present but not ours (other magic, newer
 * version, bad checksum) is an error: frames of a format we do not know
 * cannot be read, and truncating would destroy them. A zeroed header
 * says nothing about the format, only that its block was lost; the
 * frames after it are still read.
 */
export async function readSegment(
  path: string,
  onRecord: OnRecord,
  { copyBodies = true, from = SEGMENT_HEADER_BYTES }: ReadOptions = {},
): Promise<SegmentScan> {
  const file = await open(path, 'r');
  try {
    const { size: fileBytes } = await file.stat();
    const scan: SegmentScan = {
      fileBytes,
      seqFloor: undefined,
      validBytes: 0,
      damage: [],
      gaveUp: false,
    };
    const header = Buffer.alloc(SEGMENT_HEADER_BYTES);
    const { bytesRead } = await file.read(header, 0, header.length, 0);
    if (bytesRead < header.length) {
      const reason = 'shorter than a segment header';
      scan.damage.push({ offset: 0, bytes: fileBytes, reason });
      return scan;
    }
    if (isZero(header)) {
      const reason = 'segment header is zeroed';
      await resync(file, scan, 0, SEGMENT_HEADER_BYTES, reason, onRecord, copyBodies);
      return scan;
    }

    scan.seqFloor = checkHeader(path, header);
    const start = Math.max(SEGMENT_HEADER_BYTES, from);
    const stop = await readFrames(file, fileBytes, start, onRecord, copyBodies);
    scan.validBytes = stop.end;
    if (stop.reason !== undefined) {
      await resync(file, scan, stop.end, stop.end + 1, stop.reason, onRecord, copyBodies);
    }
    return scan;
  } finally {
    await file.close();
  }
}

/**
 * Whether a segment holds nothing at all: it is shorter than a header, or
 * zeros all through. A crash while the segment was being created leaves
 * one (the file exists before its first write is durable).
 */
export async function isBlankSegment(path: string): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    if (size < SEGMENT_HEADER_BYTES) return true;
    // The header first: for any segment in use that settles it.
    let chunk = Buffer.alloc(SEGMENT_HEADER_BYTES);
    for (let position = 0; position < size; ) {
      const { bytesRead } = await file.read(chunk, 0, chunk.length, position);
      if (bytesRead === 0) break;
      if (!isZero(chunk.subarray(0, bytesRead))) return false;
      position += bytesRead;
      if (chunk.length < READ_CHUNK_BYTES) {
        chunk = Buffer.alloc(Math.min(READ_CHUNK_BYTES, size));
      }
    }
    return true;
  } finally {
    await file.close();
  }
}

// The fast path: frames streamed from just after the header through one
// incremental decoder, a chunk at a time, up to the first bad or torn one.
// The next chunk is read while the current one is decoded.
async function readFrames(
  file: FileHandle,
  fileBytes: number,
  start: number,
  onRecord: OnRecord,
  copyBodies: boolean,
): Promise<{ end: number; reason: string | undefined }> {
  const decoder = new FrameDecoder({ copyBodies });
  const readAt = (at: number) => {
    const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, fileBytes - at));
    return file.read(chunk, 0, chunk.length, at);
  };
  let position = start;
  let reason: string | undefined;
  let next = position < fileBytes ? readAt(position) : undefined;
  while (next !== undefined) {
    const { buffer, bytesRead } = await next;
    next = undefined;
    if (bytesRead === 0) break;
    position += bytesRead;
    if (position < fileBytes) next = readAt(position);
    decoder.push(buffer.subarray(0, bytesRead));
    reason = drain(decoder, start, onRecord);
    if (reason !== undefined) break;
  }
  // The file is closed after this returns: no read may still be running.
  if (next !== undefined) await next;

  const end = start + decoder.consumed;
  if (reason === undefined && end < fileBytes) {
    reason = tornReason(fileBytes - end);
  }
  return { end, reason };
}

// The slow path, taken only for a damaged segment. The rest of the file,
// from `bad` on, is read into memory, since the search needs to look at
// any offset and at whole frames around it; a segment is about
// segmentBytes (64 MiB by default) plus one batch. Between one damaged
// stretch and the next, frames are decoded as on the fast path.
async function resync(
  file: FileHandle,
  scan: SegmentScan,
  bad: number,
  from: number,
  reason: string,
  onRecord: OnRecord,
  copyBodies: boolean,
): Promise<void> {
  const rest = await readAll(file, bad, scan.fileBytes - bad);
  const search = new Resync(rest);
  // Offsets within `rest` from here on.
  let start = 0;
  let next = from - bad;
  for (;;) {
    const found = search.next(next);
    if (found.kind !== 'found') {
      scan.gaveUp = found.kind === 'gave-up';
      if (scan.gaveUp) reason += '; the search for a next frame gave up';
      const bytes = rest.length - start;
      scan.damage.push({ offset: bad + start, bytes, reason });
      return;
    }
    const bytes = found.offset - start;
    scan.damage.push({ offset: bad + start, bytes, reason });

    const decoder = new FrameDecoder({ copyBodies });
    decoder.push(rest.subarray(found.offset));
    const stopped = drain(decoder, bad + found.offset, onRecord);
    start = found.offset + decoder.consumed;
    scan.validBytes = bad + start;
    if (stopped === undefined && decoder.buffered === 0) return;
    reason = stopped ?? tornReason(decoder.buffered);
    next = start + 1;
  }
}

// Hands out every whole frame the decoder holds. Returns why it stopped
// if a frame was bad, undefined if it only needs more bytes.
// `base` is the file offset of the decoder's first byte.
function drain(
  decoder: FrameDecoder,
  base: number,
  onRecord: OnRecord,
): string | undefined {
  for (;;) {
    const result = decoder.next();
    if (result.kind === 'need-more') return undefined;
    if (result.kind === 'corrupt') return result.reason;
    const offset = base + decoder.consumed - result.frameBytes;
    onRecord(result.record, result.frameBytes, offset);
  }
}

function tornReason(bytes: number): string {
  return `torn frame: ${bytes} bytes at the end`;
}

async function readAll(
  file: FileHandle,
  position: number,
  length: number,
): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await file.read(
      buf,
      filled,
      length - filled,
      position + filled,
    );
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buf.subarray(0, filled);
}

function isZero(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Whether a segment header is ours, of a version this build reads, and intact. */
export function isSoundHeader(header: Buffer): boolean {
  return header.length >= SEGMENT_HEADER_BYTES &&
    header.subarray(0, MAGIC.length).equals(MAGIC) &&
    crc32c(header.subarray(0, 20)) === header.readUInt32LE(20) &&
    READABLE_VERSIONS.includes(header.readUInt32LE(8));
}

function checkHeader(path: string, header: Buffer): number {
  if (!header.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new StoreUnavailableError(
      `segment "${path}" does not start with the Usher log magic`,
    );
  }
  if (crc32c(header.subarray(0, 20)) !== header.readUInt32LE(20)) {
    throw new StoreUnavailableError(
      `segment "${path}" has a header checksum mismatch`,
    );
  }
  const version = header.readUInt32LE(8);
  if (!READABLE_VERSIONS.includes(version)) {
    throw new StoreUnavailableError(
      `segment "${path}" has format version ${version}; ` +
        `this build reads versions ${READABLE_VERSIONS.join(', ')}`,
    );
  }
  return header.readDoubleLE(12);
}

/** Cuts a file to `length` bytes and makes the new size durable. */
export async function truncateFile(
  path: string,
  length: number,
): Promise<void> {
  const file = await open(path, 'r+');
  try {
    await file.truncate(length);
    await file.datasync();
  } finally {
    await file.close();
  }
}

/**
 * Makes file creations and deletions in `dir` durable: without it a crash
 * can bring back a deleted segment or lose a new one.
 */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// An unlink said ENOENT, and the file is indeed not there.
export async function isGone(err: unknown, path: string): Promise<boolean> {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return false;
  try {
    await lstat(path);
    return false;
  } catch (statErr) {
    return (statErr as NodeJS.ErrnoException).code === 'ENOENT';
  }
}
