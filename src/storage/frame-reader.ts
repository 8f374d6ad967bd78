// Reads `published` records back from the segment files by position, for
// messages whose bodies the broker does not keep in memory (the cold
// backlog, src/engine/cold-backlog.ts).
//
// The reads are synchronous (readSync). A page-in happens inside a receive,
// which must hand out the highest-priority message now, not after an await
// that lets other receives and publishes reorder the queue. The cost is
// bounded by batching: the frames asked for are sorted by position and
// neighbours are read in one call of at most MAX_SPAN_BYTES, so paging in
// 256 ticket events that were published together is one read of about
// 150 KiB, a few tens of microseconds from the page cache. A body that is
// no longer in the page cache costs a disk read on the event loop.
// TODO(#3): read ahead asynchronously so a receive finds the next page
// already in memory.
//
// A frame of OWN_BUFFER_BYTES or more is read straight into a buffer of
// its own (one readv for the whole span, the small frames and the gaps
// between going to a scratch buffer), and its body stays a view into
// that buffer: a 16 KiB body is then copied once, by the kernel, instead
// of into a span and out again, which was half the broker's CPU when
// consuming a cold backlog of 16 KiB messages. Small bodies are copied
// out of the scratch buffer as before, so that a message kept for long
// holds its own bytes and not a whole page's.

import { closeSync, openSync, readSync, readvSync } from 'node:fs';
import { FRAME_HEADER_BYTES } from './codec.js';
import { type PublishedHead, decodePayload, decodePublishedHead } from './codec-decode.js';
import { crc32c } from './crc32c.js';
import type { FrameLocation } from './ledger.js';
import type { PublishedRecord } from './records.js';

/** One read covers at most this much, gaps between frames included. */
const MAX_SPAN_BYTES = 1024 * 1024;
/** Frames further apart than this are read separately. */
const MAX_GAP_BYTES = 64 * 1024;
/**
 * Frames this large are read into buffers of their own, their bodies not
 * copied again. At most MAX_SPAN_BYTES / this of them in a span, so a
 * readv has at most 2 * 256 + 1 buffers, well under IOV_MAX (1024).
 */
const OWN_BUFFER_BYTES = 4 * 1024;

export class FrameReader {
  /** Read-only descriptors by segment id, opened on first use. */
  readonly #fds = new Map<number, number>();

  /**
   * The `published` records at `locations`, in the same order; undefined
   * for a location that cannot be read or does not hold a whole, valid
   * `published` frame. Throws nothing. Bodies are copies of their own:
   * a view into the read buffer would let one message that is retried
   * for a minute keep the whole page's buffer alive.
   */
  read(
    locations: readonly (FrameLocation | undefined)[],
    onError: (err: Error, location: FrameLocation) => void,
  ): (PublishedRecord | undefined)[] {
    return this.#readEach(locations, onError, decodeFrame);
  }

  /**
   * The scheduling fields of the `published` records at `locations`
   * (codec.ts, PublishedHead), each frame checked whole as read() checks
   * it. For a restart, which puts messages back cold: no body is copied.
   */
  readHeads(
    locations: readonly (FrameLocation | undefined)[],
    onError: (err: Error, location: FrameLocation) => void,
  ): (PublishedHead | undefined)[] {
    return this.#readEach(locations, onError, decodeHead);
  }

  #readEach<T>(
    locations: readonly (FrameLocation | undefined)[],
    onError: (err: Error, location: FrameLocation) => void,
    decode: (frame: Buffer, copyBody: boolean) => T | string,
  ): (T | undefined)[] {
    const records = new Array<T | undefined>(locations.length).fill(undefined);
    const order = [...locations.keys()].filter((i) => locations[i] !== undefined);
    order.sort((a, b) => compare(locations[a]!, locations[b]!));

    for (let start = 0; start < order.length; ) {
      const first = locations[order[start]]!;
      let end = start + 1;
      let spanEnd = first.offset + first.frameBytes;
      while (end < order.length) {
        const next = locations[order[end]]!;
        if (next.segment !== first.segment) break;
        if (next.offset - spanEnd > MAX_GAP_BYTES) break;
        const nextEnd = Math.max(spanEnd, next.offset + next.frameBytes);
        if (nextEnd - first.offset > MAX_SPAN_BYTES) break;
        spanEnd = nextEnd;
        end++;
      }

      try {
        const group = order.slice(start, end).map((i) => locations[i]!);
        const frames = this.#readFrames(group, spanEnd - first.offset);
        for (let k = start; k < end; k++) {
          const location = locations[order[k]]!;
          const { frame, own } = frames[k - start];
          const record = decode(frame, !own);
          if (typeof record === 'string') onError(new Error(record), location);
          else records[order[k]] = record;
        }
      } catch (err) {
        for (let k = start; k < end; k++) {
          onError(err as Error, locations[order[k]]!);
        }
      }
      start = end;
    }
    return records;
  }

  /** Closes the descriptor of a segment about to be deleted. */
  forget(segmentId: number): void {
    const fd = this.#fds.get(segmentId);
    if (fd === undefined) return;
    this.#fds.delete(segmentId);
    closeSync(fd);
  }

  closeAll(): void {
    for (const id of [...this.#fds.keys()]) this.forget(id);
  }

  /**
   * The frames at `group` (sorted, one segment, `length` bytes from the
   * first to the end of the last), each marked `own` when it has a buffer
   * of its own that its body may stay a view into.
   */
  #readFrames(group: FrameLocation[], length: number): Array<{ frame: Buffer; own: boolean }> {
    const first = group[0];
    const ownCount = group.filter((l) => l.frameBytes >= OWN_BUFFER_BYTES).length;
    const overlapping = group.some((l, i) => i > 0 &&
      l.offset < group[i - 1].offset + group[i - 1].frameBytes);
    if (ownCount === 0 || overlapping) return this.#fromSpan(group, this.#readSpan(first, length));

    // Small frames and gaps go, in order, to one scratch buffer; large
    // frames to their own. readv fills them all in one call.
    const ownBytes = group.reduce(
      (n, l) => n + (l.frameBytes >= OWN_BUFFER_BYTES ? l.frameBytes : 0),
      0,
    );
    const scratch = Buffer.allocUnsafe(length - ownBytes);
    const buffers: Buffer[] = [];
    const frames: Array<{ frame: Buffer; own: boolean }> = [];
    let scratchAt = 0;
    let pieceStart = 0;
    let at = first.offset;
    const closePiece = () => {
      if (scratchAt > pieceStart) buffers.push(scratch.subarray(pieceStart, scratchAt));
      pieceStart = scratchAt;
    };
    for (const location of group) {
      scratchAt += location.offset - at;
      if (location.frameBytes >= OWN_BUFFER_BYTES) {
        closePiece();
        const frame = Buffer.allocUnsafeSlow(location.frameBytes);
        buffers.push(frame);
        frames.push({ frame, own: true });
      } else {
        const frame = scratch.subarray(scratchAt, scratchAt + location.frameBytes);
        frames.push({ frame, own: false });
        scratchAt += location.frameBytes;
      }
      at = location.offset + location.frameBytes;
    }
    closePiece();

    const read = readvSync(this.#fdOf(first), buffers, first.offset);
    // Short only at the end of the file (or a read cut short): the plain
    // read says which, and retries what it can.
    if (read < length) return this.#fromSpan(group, this.#readSpan(first, length));
    return frames;
  }

  #fromSpan(group: FrameLocation[], span: Buffer): Array<{ frame: Buffer; own: boolean }> {
    const base = group[0].offset;
    return group.map((l) => ({
      frame: span.subarray(l.offset - base, l.offset - base + l.frameBytes),
      own: false,
    }));
  }

  #fdOf(location: FrameLocation): number {
    const { segment } = location;
    let fd = this.#fds.get(segment.id);
    if (fd === undefined) {
      fd = openSync(segment.path, 'r');
      this.#fds.set(segment.id, fd);
    }
    return fd;
  }

  #readSpan(first: FrameLocation, length: number): Buffer {
    const { segment } = first;
    const fd = this.#fdOf(first);
    const span = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const n = readSync(fd, span, filled, length - filled, first.offset + filled);
      if (n === 0) {
        throw new Error(`segment "${segment.path}" ends before ${first.offset + length}`);
      }
      filled += n;
    }
    return span;
  }
}

function compare(a: FrameLocation, b: FrameLocation): number {
  return a.segment.id - b.segment.id || a.offset - b.offset;
}

// A frame is checked as recovery checks it: length, checksum, a payload
// that decodes whole. A bit flipped since the log was replayed shows here.
// With `copyBody` false the body stays a view into `frame`.
function decodeFrame(frame: Buffer, copyBody: boolean): PublishedRecord | string {
  const payload = checkedPayload(frame);
  if (typeof payload === 'string') return payload;
  const decoded = decodePayload(payload, copyBody);
  if (!decoded.ok) return decoded.reason;
  if (decoded.record.type !== 'published') {
    return `expected a published record, found ${decoded.record.type}`;
  }
  return decoded.record;
}

function decodeHead(frame: Buffer): PublishedHead | string {
  const payload = checkedPayload(frame);
  return typeof payload === 'string' ? payload : decodePublishedHead(payload);
}

// The payload of a whole frame whose length and checksum hold; else why not.
function checkedPayload(frame: Buffer): Buffer | string {
  if (frame.length < FRAME_HEADER_BYTES) return 'frame is cut short';
  const length = frame.readUInt32LE(0);
  if (length !== frame.length - FRAME_HEADER_BYTES) {
    return `frame length ${length} does not match the ledger's ${frame.length}`;
  }
  const payload = frame.subarray(FRAME_HEADER_BYTES);
  if (crc32c(payload) !== frame.readUInt32LE(4)) return 'frame checksum mismatch';
  return payload;
}
