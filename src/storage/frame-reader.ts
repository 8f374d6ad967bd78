// Reads `published` records back from the segment files by position, for
// messages whose bodies the broker does not keep in memory (the cold
// backlog, src/engine/cold-backlog.ts).
//
// A read is synchronous (readSync). A page-in happens inside a receive,
// which must hand out the highest-priority message now, not after an await
// that lets other receives and publishes reorder the queue. So the page
// that comes next is read ahead (readAhead), off the event loop, into
// FramesAhead (read-ahead.ts): the page-in then finds its frames in memory
// and checks and decodes them as it would have after reading them itself
// (copying bodies out of the read buffers, which are used again).
// Only a frame not read ahead in time (the first page of a backlog, one
// whose read failed or ran late) is read synchronously.
//
// Reads are batched: the frames asked for are sorted by position and
// neighbours are read in one call of at most MAX_SPAN_BYTES, so paging in
// 256 ticket events that were published together is one read of about
// 150 KiB, a few tens of microseconds from the page cache.
//
// A frame of OWN_BUFFER_BYTES or more is read straight into a buffer of
// its own (one readv for the whole span, the small frames and the gaps
// between going to a scratch buffer), and its body stays a view into
// that buffer: a 16 KiB body is then copied once, by the kernel, instead
// of into a span and out again, which was half the broker's CPU when
// consuming a cold backlog of 16 KiB messages. Small bodies are copied
// out of the scratch buffer as before, so that a message kept for long
// holds its own bytes and not a whole page's.

import { closeSync, openSync, read, readSync, readvSync } from 'node:fs';
import { FRAME_HEADER_BYTES } from './codec.js';
import { type PublishedHead, decodePayload, decodePublishedHead } from './codec-decode.js';
import { crc32c } from './crc32c.js';
import type { FrameLocation } from './ledger.js';
import { type AheadFrame, type Chunk, FramesAhead } from './read-ahead.js';
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
/**
 * Read buffers held for frames read ahead, at most: four pages of a queue
 * (engine/cold-tier.ts, PAGE_IN_BYTES), so a few queues draining at once
 * each find their next pages read. In chunks of MAX_SPAN_BYTES.
 */
export const READ_AHEAD_BYTES = 16 * 1024 * 1024;

/** Where one read goes: the buffers a readv fills, and the frames in them. */
interface SpanRead {
  position: number;
  length: number;
  buffers: Buffer[];
  frames: Array<{ frame: Buffer; own: boolean }>;
}

export class FrameReader {
  /** Read-only descriptors by segment id, opened on first use. */
  readonly #fds = new Map<number, number>();
  readonly #ahead: FramesAhead;
  /** Reads ahead running, by segment id: its descriptor stays open until they end. */
  readonly #reading = new Map<number, number>();
  /** Descriptors of forgotten segments, closed when their reads ahead end. */
  readonly #closing = new Map<number, number>();
  /** Frames a read found read ahead, and frames it read itself. */
  framesReadAhead = 0;
  framesReadInLine = 0;

  constructor(readAheadBytes = READ_AHEAD_BYTES) {
    const chunks = Math.max(1, Math.floor(readAheadBytes / MAX_SPAN_BYTES));
    this.#ahead = new FramesAhead(MAX_SPAN_BYTES, chunks);
  }

  /**
   * The `published` records at `locations`, in the same order; undefined
   * for a location that cannot be read or does not hold a whole, valid
   * `published` frame. Throws nothing. Frames read ahead are used, and
   * checked, as if read now.
   */
  read(
    locations: readonly (FrameLocation | undefined)[],
    onError: (err: Error, location: FrameLocation) => void,
  ): (PublishedRecord | undefined)[] {
    return this.#readEach(locations, onError, decodeFrame, true);
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
    return this.#readEach(locations, onError, decodeHead, false);
  }

  /**
   * Starts reading the frames at `locations` into memory off the event
   * loop, for a read() soon. Frames read ahead already are skipped, and
   * so is whatever finds no room. Resolves, never rejects, when the reads
   * end: a read that fails leaves its frames to read() (which reports).
   */
  readAhead(locations: readonly (FrameLocation | undefined)[]): Promise<void> {
    const wanted: FrameLocation[] = [];
    for (const location of locations) {
      if (location === undefined) continue;
      if (this.#ahead.has(location.segment.id, location.offset)) continue;
      wanted.push(location);
    }
    // A page asked for in seq order is nearly always in log order already.
    const unique = inOrder(wanted) ? wanted : sortedUnique(wanted);

    const reads: Promise<void>[] = [];
    for (const [from, to, length] of spans(unique)) {
      // A frame larger than a chunk is left to read().
      if (length > this.#ahead.chunkBytes) continue;
      const chunk = this.#ahead.chunk();
      if (chunk === undefined) break;
      reads.push(this.#readAheadSpan(unique.slice(from, to), length, chunk));
    }
    return Promise.all(reads).then(() => undefined);
  }

  #readEach<T>(
    locations: readonly (FrameLocation | undefined)[],
    onError: (err: Error, location: FrameLocation) => void,
    decode: (frame: Buffer, copyBody: boolean) => T | string,
    useAhead: boolean,
  ): (T | undefined)[] {
    const records = new Array<T | undefined>(locations.length).fill(undefined);
    const place = (at: number, frame: Buffer, own: boolean) => {
      const location = locations[at]!;
      const record = decode(frame, !own);
      if (typeof record === 'string') onError(new Error(record), location);
      else records[at] = record;
    };

    const order: number[] = [];
    for (let i = 0; i < locations.length; i++) {
      const location = locations[i];
      if (location === undefined) continue;
      const ahead = useAhead ? this.#takeAhead(location) : undefined;
      if (ahead === undefined) {
        order.push(i);
        continue;
      }
      // A view into a chunk that is used again: the body is copied out.
      try {
        place(i, ahead.chunk.buffer.subarray(ahead.at, ahead.at + ahead.frameBytes), false);
      } catch (err) {
        onError(err as Error, location);
      } finally {
        this.#ahead.release(ahead.chunk);
      }
    }
    this.framesReadAhead += locations.length - order.length;
    this.framesReadInLine += order.length;
    order.sort((a, b) => compare(locations[a]!, locations[b]!));

    const sorted = order.map((i) => locations[i]!);
    for (const [start, end, length] of spans(sorted)) {
      try {
        const frames = this.#readFrames(sorted.slice(start, end), length);
        for (let k = start; k < end; k++) {
          const { frame, own } = frames[k - start];
          place(order[k], frame, own);
        }
      } catch (err) {
        for (let k = start; k < end; k++) onError(err as Error, sorted[k]);
      }
    }
    return records;
  }

  // Counted where it is taken: a frame not found is read in line.
  #takeAhead(location: FrameLocation): AheadFrame | undefined {
    if (this.#ahead.size === 0) return undefined;
    return this.#ahead.take(location.segment.id, location.offset, location.frameBytes);
  }

  /** Closes the descriptor of a segment about to be deleted. */
  forget(segmentId: number): void {
    this.#ahead.forgetSegment(segmentId);
    const fd = this.#fds.get(segmentId);
    if (fd === undefined) return;
    this.#fds.delete(segmentId);
    // A read ahead still running on it must not find the number reused.
    if ((this.#reading.get(segmentId) ?? 0) > 0) this.#closing.set(segmentId, fd);
    else closeSync(fd);
  }

  closeAll(): void {
    for (const id of [...this.#fds.keys()]) this.forget(id);
  }

  // One read of `length` bytes into `chunk`, the frames of `group` views
  // into it once it lands.
  #readAheadSpan(group: FrameLocation[], length: number, chunk: Chunk): Promise<void> {
    const ahead = this.#ahead;
    const first = group[0];
    const entries = group.map((l) => ahead.reserve(l.segment.id, l.offset, l.frameBytes, chunk));
    let fd: number;
    try {
      fd = this.#fdOf(first);
    } catch {
      for (const entry of entries) ahead.drop(entry);
      ahead.finish(chunk);
      return Promise.resolve();
    }
    const id = first.segment.id;
    this.#reading.set(id, (this.#reading.get(id) ?? 0) + 1);
    return new Promise((resolve) => {
      read(fd, chunk.buffer, 0, length, first.offset, (err, bytes) => {
        this.#endReading(id);
        // Short or failed: read() reads these itself, and says why not.
        const landed = err === null && bytes === length;
        for (const entry of entries) {
          if (landed) ahead.land(entry, entry.offset - first.offset);
          else ahead.drop(entry);
        }
        ahead.finish(chunk);
        resolve();
      });
    });
  }

  #endReading(id: number): void {
    const left = (this.#reading.get(id) ?? 1) - 1;
    if (left > 0) {
      this.#reading.set(id, left);
      return;
    }
    this.#reading.delete(id);
    const fd = this.#closing.get(id);
    if (fd === undefined) return;
    this.#closing.delete(id);
    closeSync(fd);
  }

  /**
   * The frames at `group` (sorted, one segment, `length` bytes from the
   * first to the end of the last), each marked `own` when it has a buffer
   * of its own that its body may stay a view into.
   */
  #readFrames(group: FrameLocation[], length: number): Array<{ frame: Buffer; own: boolean }> {
    const span = this.#plan(group, length);
    const read = readvSync(this.#fdOf(group[0]), span.buffers, span.position);
    // Short only at the end of the file (or a read cut short): the plain
    // read says which, and retries what it can.
    if (read < length) return this.#fromSpan(group, this.#readSpan(group[0], length));
    return span.frames;
  }

  /**
   * Where the frames at `group` go: large ones to buffers of their own,
   * small frames and the gaps between, in order, to one scratch buffer.
   * One buffer for all when none is large, or frames overlap.
   */
  #plan(group: FrameLocation[], length: number): SpanRead {
    const first = group[0];
    const ownCount = group.filter((l) => l.frameBytes >= OWN_BUFFER_BYTES).length;
    const overlapping = group.some((l, i) => i > 0 &&
      l.offset < group[i - 1].offset + group[i - 1].frameBytes);
    if (ownCount === 0 || overlapping) {
      const whole = Buffer.allocUnsafe(length);
      const frames = this.#fromSpan(group, whole);
      return { position: first.offset, length, buffers: [whole], frames };
    }

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
    return { position: first.offset, length, buffers, frames };
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

/**
 * Sorted `locations` cut into runs read in one call each: one segment,
 * gaps of at most MAX_GAP_BYTES, at most MAX_SPAN_BYTES from the first
 * frame's start to the last one's end (one frame at least). Each run as
 * [from, to, length].
 */
function spans(locations: readonly FrameLocation[]): Array<[number, number, number]> {
  const runs: Array<[number, number, number]> = [];
  for (let start = 0; start < locations.length; ) {
    const first = locations[start];
    let end = start + 1;
    let spanEnd = first.offset + first.frameBytes;
    while (end < locations.length) {
      const next = locations[end];
      if (next.segment !== first.segment) break;
      if (next.offset - spanEnd > MAX_GAP_BYTES) break;
      const nextEnd = Math.max(spanEnd, next.offset + next.frameBytes);
      if (nextEnd - first.offset > MAX_SPAN_BYTES) break;
      spanEnd = nextEnd;
      end++;
    }
    runs.push([start, end, spanEnd - first.offset]);
    start = end;
  }
  return runs;
}

function compare(a: FrameLocation, b: FrameLocation): number {
  return a.segment.id - b.segment.id || a.offset - b.offset;
}

/** Whether `locations` are in log order, each after the one before. */
function inOrder(locations: readonly FrameLocation[]): boolean {
  for (let i = 1; i < locations.length; i++) {
    if (compare(locations[i - 1], locations[i]) >= 0) return false;
  }
  return true;
}

/** `locations` sorted into log order, each location once. */
function sortedUnique(locations: FrameLocation[]): FrameLocation[] {
  locations.sort(compare);
  return locations.filter((l, i) => i === 0 || compare(l, locations[i - 1]) !== 0);
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
