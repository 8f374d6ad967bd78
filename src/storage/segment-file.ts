// Segment files: their names, the header each starts with, and the
// recovery scan that reads one back.
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
//   | USHERLOG | u32le 1  | f64le         | of 0..20  |
//   +----------+----------+---------------+-----------+
//
// The seq floor is the highest seq allocated when the segment was created.
// It keeps seqs increasing across restarts even after every segment that
// named the highest seqs has been deleted.

import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreUnavailableError } from '../errors.js';
import { crc32c } from './crc32c.js';
import { FrameDecoder } from './frame-decoder.js';
import type { LogRecord } from './records.js';

export const SEGMENT_HEADER_BYTES = 24;
export const FORMAT_VERSION = 1;

const MAGIC = Buffer.from('USHERLOG', 'latin1');
const NAME_PATTERN = /^(\d{20})\.log$/;
const READ_CHUNK_BYTES = 1024 * 1024;

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

export function encodeSegmentHeader(seqFloor: number): Buffer {
  const header = Buffer.alloc(SEGMENT_HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32LE(FORMAT_VERSION, 8);
  header.writeDoubleLE(seqFloor, 12);
  header.writeUInt32LE(crc32c(header.subarray(0, 20)), 20);
  return header;
}

export type SegmentReadResult =
  /** Shorter than a header or a zeroed one: a crash while creating it. */
  | { kind: 'unborn'; fileBytes: number }
  | {
      kind: 'read';
      seqFloor: number;
      /** Header plus every whole, valid frame: where a bad tail starts. */
      validBytes: number;
      fileBytes: number;
      /** Why reading stopped before the end of the file, if it did. */
      tailReason: string | undefined;
    };

/**
 * Reads one segment, calling `onRecord` for each valid frame in order and
 * stopping at the first frame that is torn or corrupt. A header that is
 * present but not ours (other magic, newer version, bad checksum) is an
 * error: truncating it would destroy data we cannot read.
 */
export async function readSegment(
  path: string,
  onRecord: (record: LogRecord, frameBytes: number) => void,
): Promise<SegmentReadResult> {
  const file = await open(path, 'r');
  try {
    const { size: fileBytes } = await file.stat();
    const header = Buffer.alloc(SEGMENT_HEADER_BYTES);
    const { bytesRead } = await file.read(header, 0, header.length, 0);
    if (bytesRead < header.length || header.every((byte) => byte === 0)) {
      return { kind: 'unborn', fileBytes };
    }
    const seqFloor = checkHeader(path, header);

    const decoder = new FrameDecoder({ copyBodies: true });
    let position = SEGMENT_HEADER_BYTES;
    let tailReason: string | undefined;
    reading: while (position < fileBytes) {
      const chunk = Buffer.allocUnsafe(
        Math.min(READ_CHUNK_BYTES, fileBytes - position),
      );
      const read = await file.read(chunk, 0, chunk.length, position);
      const n = read.bytesRead;
      if (n === 0) break;
      position += n;
      decoder.push(chunk.subarray(0, n));

      for (;;) {
        const result = decoder.next();
        if (result.kind === 'need-more') break;
        if (result.kind === 'corrupt') {
          tailReason = result.reason;
          break reading;
        }
        onRecord(result.record, result.frameBytes);
      }
    }

    const validBytes = SEGMENT_HEADER_BYTES + decoder.consumed;
    if (tailReason === undefined && validBytes < fileBytes) {
      tailReason = `torn frame: ${fileBytes - validBytes} bytes at the end`;
    }
    return { kind: 'read', seqFloor, validBytes, fileBytes, tailReason };
  } finally {
    await file.close();
  }
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
  if (version !== FORMAT_VERSION) {
    throw new StoreUnavailableError(
      `segment "${path}" has format version ${version}; ` +
        `this build reads version ${FORMAT_VERSION}`,
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
