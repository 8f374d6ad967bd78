// The bytes a decoder has been given but not consumed yet, kept as the
// chunks they arrived in. Reads that fall inside one chunk are views;
// only reads that straddle chunks copy. Offsets are relative to the first
// unread byte, and only Buffer methods touch the data, so pooled buffers
// (a view at some byteOffset into a larger ArrayBuffer) read correctly.

const EMPTY = Buffer.alloc(0);

/** Compact the chunk list once this many consumed slots lead it. */
const COMPACT_AFTER = 64;

export class ChunkQueue {
  #chunks: Buffer[] = [];
  /** Index in #chunks of the chunk holding the next unread byte. */
  #first = 0;
  /** Offset of the next unread byte in that chunk. */
  #head = 0;
  #length = 0;

  /** Unread bytes. */
  get length(): number {
    return this.#length;
  }

  /** The chunk holding the next unread byte, to read at `head`. */
  get first(): Buffer {
    return this.#chunks[this.#first];
  }

  get head(): number {
    return this.#head;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  clear(): void {
    this.#chunks = [];
    this.#first = 0;
    this.#head = 0;
    this.#length = 0;
  }

  /** Whether the next `length` bytes all lie in `first`. */
  contiguous(length: number): boolean {
    return (
      this.#first < this.#chunks.length &&
      this.#head + length <= this.#chunks[this.#first].length
    );
  }

  byteAt(at: number): number {
    let offset = this.#head + at;
    for (let i = this.#first; i < this.#chunks.length; i++) {
      const chunk = this.#chunks[i];
      if (offset < chunk.length) return chunk[offset];
      offset -= chunk.length;
    }
    throw new RangeError(`byte ${at} is past the ${this.#length} buffered`);
  }

  /** Copies the next `length` bytes into `target` without consuming. */
  copyInto(target: Buffer, length: number): void {
    if (length > this.#length) {
      throw new RangeError(`${length} bytes asked, ${this.#length} buffered`);
    }
    let filled = 0;
    let start = this.#head;
    for (let i = this.#first; filled < length; i++) {
      const chunk = this.#chunks[i];
      const n = Math.min(length - filled, chunk.length - start);
      chunk.copy(target, filled, start, start + n);
      filled += n;
      start = 0;
    }
  }

  /** Consumes the next `length` bytes: a view if in one chunk, else a copy. */
  take(length: number): Buffer {
    if (length === 0) return EMPTY;
    if (this.contiguous(length)) {
      const view = this.first.subarray(this.#head, this.#head + length);
      this.skip(length);
      return view;
    }

    const copy = Buffer.allocUnsafe(length);
    this.copyInto(copy, length);
    this.skip(length);
    return copy;
  }

  skip(length: number): void {
    this.#length -= length;
    this.#head += length;
    const chunks = this.#chunks;
    while (
      this.#first < chunks.length &&
      this.#head >= chunks[this.#first].length
    ) {
      this.#head -= chunks[this.#first].length;
      chunks[this.#first++] = EMPTY; // let it be collected
    }

    // Drop consumed slots in bulk, not one shift() per chunk: a peer that
    // sends a frame one byte per packet would otherwise cost O(n^2).
    if (this.#first === chunks.length) {
      this.#chunks = [];
      this.#first = 0;
    } else if (
      this.#first >= COMPACT_AFTER &&
      this.#first * 2 >= chunks.length
    ) {
      this.#chunks = chunks.slice(this.#first);
      this.#first = 0;
    }
  }
}
