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

import { closeSync, openSync, readSync } from 'node:fs';
import { FRAME_HEADER_BYTES, decodePayload } from './codec.js';
import { crc32c } from './crc32c.js';
import type { FrameLocation } from './ledger.js';
import type { PublishedRecord } from './records.js';

/** One read covers at most this much, gaps between frames included. */
const MAX_SPAN_BYTES = 1024 * 1024;
/** Frames further apart than this are read separately. */
const MAX_GAP_BYTES = 64 * 1024;

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
    const records = new Array<PublishedRecord | undefined>(locations.length).fill(undefined);
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
        const span = this.#readSpan(first, spanEnd - first.offset);
        for (let k = start; k < end; k++) {
          const location = locations[order[k]]!;
          const frame = span.subarray(
            location.offset - first.offset,
            location.offset - first.offset + location.frameBytes,
          );
          const record = decodeFrame(frame);
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

  #readSpan(first: FrameLocation, length: number): Buffer {
    const { segment } = first;
    let fd = this.#fds.get(segment.id);
    if (fd === undefined) {
      fd = openSync(segment.path, 'r');
      this.#fds.set(segment.id, fd);
    }
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
function decodeFrame(frame: Buffer): PublishedRecord | string {
  if (frame.length < FRAME_HEADER_BYTES) return 'frame is cut short';
  const length = frame.readUInt32LE(0);
  if (length !== frame.length - FRAME_HEADER_BYTES) {
    return `frame length ${length} does not match the ledger's ${frame.length}`;
  }
  const payload = frame.subarray(FRAME_HEADER_BYTES);
  if (crc32c(payload) !== frame.readUInt32LE(4)) return 'frame checksum mismatch';
  const decoded = decodePayload(payload, true);
  if (!decoded.ok) return decoded.reason;
  if (decoded.record.type !== 'published') {
    return `expected a published record, found ${decoded.record.type}`;
  }
  return decoded.record;
}
