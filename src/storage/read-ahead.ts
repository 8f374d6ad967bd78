// Frames read from the segment files before a page-in asks for them
// (frame-reader.ts), found by segment and offset. A frame is taken out
// when a read asks for it; one never asked for (its message purged, say)
// waits until newer frames need its room.
//
// Frames are read into chunks (of MAX_SPAN_BYTES) that are used again and
// again, never left to the collector: one run of neighbouring frames a
// chunk. A page-in copies each body out as it decodes the frame (into a
// buffer that, like one read in line, lives only as long as its message),
// then gives the frame's share of the chunk back. Buffers of their own
// for frames read ahead lived a page or two longer than buffers read in
// line, long enough to be promoted and left to full collections: reading
// a 16 KiB backlog ahead that way cost 7-8 µs of broker CPU a message
// more than reading it in line, in three interleaved pairs of runs
// (bench/amqp-compare.ts --only durable, load 8-12 on 2 cores); with
// chunks, 3-8 µs more (four sets of 2-3 pairs, load 5-13), of 41-52.
// TODO(#4): the rest of that gap is not yet measured apart. Reading one
// page ahead instead of two costs more (a third of the frames are still
// being read when taken, and are read twice); one read a page instead of
// four changed nothing measurable. Outside the broker (a store alone,
// 16 KiB frames) reading ahead took ~5 µs more of the main thread a
// frame (the copy out among it) and ~5 µs of V8's helper threads.
//
// In memory at most maxChunks * chunkBytes, outside the queues'
// hot-body budgets (engine/cold-tier.ts).

/** A read buffer, and how many frames (and reads running) still use it. */
export interface Chunk {
  readonly buffer: Buffer;
  users: number;
}

/**
 * A frame read ahead, or being read (`at` -1 until it lands, then where
 * in the chunk it starts). Kept small and holding no view of the chunk:
 * entries wait a page or two, long enough to be promoted.
 */
export interface AheadFrame {
  segment: number;
  offset: number;
  frameBytes: number;
  chunk: Chunk;
  at: number;
}

export class FramesAhead {
  readonly #bySegment = new Map<number, Map<number, AheadFrame>>();
  /** Every entry, oldest first: the order they give up their room in. */
  readonly #oldestFirst = new Set<AheadFrame>();
  readonly #free: Chunk[] = [];
  #chunks = 0;

  constructor(readonly chunkBytes: number, readonly maxChunks: number) {}

  /** Frames read ahead or being read. */
  get size(): number {
    return this.#oldestFirst.size;
  }

  /** Chunks in use, not counting those free to be used again. */
  get chunksInUse(): number {
    return this.#chunks - this.#free.length;
  }

  /** Whether the frame at `offset` of `segment` is read ahead or being read. */
  has(segment: number, offset: number): boolean {
    return this.#bySegment.get(segment)?.has(offset) ?? false;
  }

  /**
   * A chunk for a read about to start, its one user the read (finish()
   * when it ends); room made by dropping the oldest frames that landed.
   * Undefined when there is none to be had.
   */
  chunk(): Chunk | undefined {
    for (const old of this.#oldestFirst) {
      if (this.#free.length > 0 || this.#chunks < this.maxChunks) break;
      if (old.at >= 0) this.drop(old);
    }
    let chunk = this.#free.pop();
    if (chunk === undefined) {
      if (this.#chunks >= this.maxChunks) return undefined;
      chunk = { buffer: Buffer.allocUnsafeSlow(this.chunkBytes), users: 0 };
      this.#chunks++;
    }
    chunk.users = 1;
    return chunk;
  }

  /** An entry for a frame to be read into `chunk`. */
  reserve(segment: number, offset: number, frameBytes: number, chunk: Chunk): AheadFrame {
    const entry: AheadFrame = { segment, offset, frameBytes, chunk, at: -1 };
    let frames = this.#bySegment.get(segment);
    if (frames === undefined) {
      frames = new Map();
      this.#bySegment.set(segment, frames);
    }
    const old = frames.get(offset);
    if (old !== undefined) this.drop(old);
    frames.set(offset, entry);
    this.#oldestFirst.add(entry);
    chunk.users++;
    return entry;
  }

  /** A read landed: `entry`'s frame starts at `at` in its chunk. */
  land(entry: AheadFrame, at: number): void {
    entry.at = at;
  }

  /** The read into `chunk` ended, landed or not. */
  finish(chunk: Chunk): void {
    this.release(chunk);
  }

  /**
   * Takes the frame at `offset` of `segment` out: it, if it landed with
   * the length asked for (the caller then release()s its chunk once done
   * with the frame); undefined otherwise (a read still running is
   * forgotten, and its frame dropped when it lands).
   */
  take(segment: number, offset: number, frameBytes: number): AheadFrame | undefined {
    const entry = this.#bySegment.get(segment)?.get(offset);
    if (entry === undefined) return undefined;
    this.#unlist(entry);
    if (entry.at >= 0 && entry.frameBytes === frameBytes) return entry;
    this.release(entry.chunk);
    return undefined;
  }

  /** One user less of `chunk`; free to be used again when none is left. */
  release(chunk: Chunk): void {
    if (--chunk.users === 0) this.#free.push(chunk);
  }

  drop(entry: AheadFrame): void {
    if (this.#bySegment.get(entry.segment)?.get(entry.offset) !== entry) return;
    this.#unlist(entry);
    this.release(entry.chunk);
  }

  /** Drops every frame of a segment about to be deleted. */
  forgetSegment(segment: number): void {
    for (const entry of [...(this.#bySegment.get(segment)?.values() ?? [])]) this.drop(entry);
  }

  #unlist(entry: AheadFrame): void {
    const frames = this.#bySegment.get(entry.segment)!;
    frames.delete(entry.offset);
    if (frames.size === 0) this.#bySegment.delete(entry.segment);
    this.#oldestFirst.delete(entry);
  }
}
