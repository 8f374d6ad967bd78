// A table of rows keyed by message seq, kept in typed arrays instead of one
// JS object per row: a seq (u32 below 2^32, else f64) and a few u32
// columns, about 5 + 4n bytes a row. The ledger keeps where every live
// message lies in it, and replay keeps what the queues need to rebuild a
// cold backlog.
//
// Seqs are handed out in increasing order and nearly always arrive that
// way, so rows are appended at the end and the table stays sorted; a
// lookup is a binary search. The rows live in chunks of CHUNK_ROWS, so the
// table grows without copying itself, and a rare seq that arrives late (a
// message moved in from a memory queue keeps its old seq) is inserted into
// its chunk, splitting the chunk when full.
//
//   chunks:  [ seqs u32 x CHUNK | cols u32 x CHUNK*n | alive u8 x CHUNK ]
//            (seqs f64 in a chunk that met one of 2^32 or more: seq-column.ts)
//            [ ... ]   sorted by seq across and within chunks
//
// Deleting a row only clears its alive flag. A chunk rewrites itself in
// place once half its rows are dead, and leaves the table once empty, so
// settled messages cost nothing for long. A table made with `keepSpare`
// (the log's ledger) keeps the last chunk to leave for the next one it
// needs: a queue whose every message is acked as soon as it lands empties
// its table between publishes, hundreds of times a second at 5,000 msg/s,
// and a fresh chunk each time was 200 MB/s of typed arrays. V8 collects
// young ArrayBuffers past 32 MB at once, so that churn forced a scavenge
// every 0.15 s, which promoted whatever was in flight, and a full
// collection followed every 0.15 s: p99 17-20 ms (issue #4).

import { SeqColumn } from './seq-column.js';

const CHUNK_ROWS = 16 * 1024;

class Chunk {
  readonly seqs: SeqColumn;
  readonly cols: Uint32Array;
  readonly alive: Uint8Array;
  length = 0;
  live = 0;

  constructor(readonly width: number, capacity = CHUNK_ROWS) {
    this.seqs = new SeqColumn(capacity);
    this.cols = new Uint32Array(capacity * width);
    this.alive = new Uint8Array(capacity);
  }

  get first(): number {
    return this.seqs.at(0);
  }

  get last(): number {
    return this.seqs.at(this.length - 1);
  }

  /** Index of the first row whose seq is >= `seq`. */
  lowerBound(seq: number): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.seqs.at(mid) < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Opens a row at `index`, moving the later rows up by one. */
  openAt(index: number, seq: number): void {
    const width = this.width;
    this.seqs.copyWithin(index + 1, index, this.length);
    this.cols.copyWithin((index + 1) * width, index * width, this.length * width);
    this.alive.copyWithin(index + 1, index, this.length);
    this.seqs.set(index, seq);
    this.alive[index] = 0;
    this.length++;
  }

  /**
   * Drops dead rows, keeping the order of the live ones. A run of live
   * rows moves in one copyWithin per column: acks in publish order leave
   * one run, half a chunk, and moving it a row at a time was 3% of the
   * broker's CPU draining a queue (bench:amqp --only durable, 464 B).
   */
  squeeze(): void {
    const width = this.width;
    const alive = this.alive;
    let to = 0;
    let from = 0;
    while (from < this.length) {
      if (alive[from] === 0) {
        from++;
        continue;
      }
      let end = from + 1;
      while (end < this.length && alive[end] !== 0) end++;
      if (to !== from) {
        this.seqs.copyWithin(to, from, end);
        this.cols.copyWithin(to * width, from * width, end * width);
        alive.copyWithin(to, from, end);
      }
      to += end - from;
      from = end;
    }
    this.length = to;
  }

  /** Moves the upper half of the rows into `upper`, an empty chunk, and returns it. */
  splitOff(upper: Chunk): Chunk {
    const half = this.length >>> 1;
    const width = this.width;
    upper.seqs.copyFrom(this.seqs, half, this.length);
    upper.cols.set(this.cols.subarray(half * width, this.length * width));
    upper.alive.set(this.alive.subarray(half, this.length));
    upper.length = this.length - half;
    for (let i = 0; i < upper.length; i++) upper.live += upper.alive[i];
    this.length = half;
    this.live -= upper.live;
    return upper;
  }
}

/** Where a row is: valid until the next change to the table. */
export interface RowRef {
  chunk: Chunk;
  index: number;
}

/**
 * Rows [from, to) of one chunk, as forEachRunAfter hands them out: row i
 * has seq `seqs.at(i)` and column c at `cols[i * width + c]`, and is dead
 * (skip it) where `alive[i]` is 0.
 */
export interface RowRun {
  seqs: SeqColumn;
  cols: Uint32Array;
  alive: Uint8Array;
  from: number;
  to: number;
}

export class SeqTable {
  readonly #width: number;
  readonly #chunks: Chunk[] = [];
  readonly #keepSpare: boolean;
  /** The last chunk to leave, emptied, when #keepSpare; made chunks go first to it. */
  #spare: Chunk | undefined;
  #chunksMade = 0;
  #size = 0;
  /**
   * Where #slotFor found or made room, besides the index it returns: one
   * object reused rather than one returned a put, which the ledger makes
   * for every message published (an allocation V8 did not optimize away).
   */
  readonly #slot = { chunk: undefined as unknown as Chunk, added: false };

  /**
   * `width` u32 columns per row. `keepSpare`: keep one emptied chunk (about
   * (5 + 4 * width) * 16 KiB bytes) for reuse; worth it for a table that
   * empties and refills all the time, not for one of many idle ones.
   */
  constructor(width: number, { keepSpare = false } = {}) {
    this.#width = width;
    this.#keepSpare = keepSpare;
  }

  /** Live rows. */
  get size(): number {
    return this.#size;
  }

  /** Chunks in use, for tests of the memory bound. */
  get chunkCount(): number {
    return this.#chunks.length;
  }

  /** Chunks allocated so far, for tests of the reuse. */
  get chunksMade(): number {
    return this.#chunksMade;
  }

  has(seq: number): boolean {
    return this.find(seq) !== undefined;
  }

  /** The live row of `seq`, or undefined. */
  find(seq: number): RowRef | undefined {
    const chunk = this.#chunkFor(seq);
    if (chunk === undefined) return undefined;
    const index = chunk.lowerBound(seq);
    if (index === chunk.length || chunk.seqs.at(index) !== seq) return undefined;
    if (chunk.alive[index] === 0) return undefined;
    return { chunk, index };
  }

  /** Column `column` of a live row found by find(). */
  col(row: RowRef, column: number): number {
    return row.chunk.cols[row.index * this.#width + column];
  }

  setCol(row: RowRef, column: number, value: number): void {
    row.chunk.cols[row.index * this.#width + column] = value;
  }

  /**
   * Sets the row of `seq` to `values`, adding it if it is not live. Returns
   * true when the row was added, false when it replaced a live one.
   */
  put(seq: number, values: ArrayLike<number>): boolean {
    const index = this.#slotFor(seq);
    const chunk = this.#slot.chunk;
    const added = this.#slot.added;
    const base = index * this.#width;
    for (let c = 0; c < this.#width; c++) chunk.cols[base + c] = values[c];
    if (added) {
      chunk.alive[index] = 1;
      chunk.live++;
      this.#size++;
    }
    return added;
  }

  /** Marks the row of `seq` dead; false when it was not live. */
  delete(seq: number): boolean {
    const row = this.find(seq);
    if (row === undefined) return false;
    this.deleteRow(row);
    return true;
  }

  /** Marks a row found by find() dead; `row` is stale afterwards. */
  deleteRow(row: RowRef): void {
    const { chunk, index } = row;
    chunk.alive[index] = 0;
    chunk.live--;
    this.#size--;
    if (chunk.live === 0) {
      this.#chunks.splice(this.#chunks.indexOf(chunk), 1);
      if (this.#keepSpare && chunk.seqs.length === CHUNK_ROWS) this.#spare = chunk;
    } else if (chunk.live * 2 < chunk.length && chunk !== this.#chunks.at(-1)) {
      // The last chunk is still being appended to: rewriting it at every
      // other delete would cost more than the dead rows do.
      chunk.squeeze();
    }
  }

  /**
   * Live rows in seq order, from the first. The callback gets the seq and
   * the row; it must not change the table. Returns early when the
   * callback returns false.
   */
  forEach(visit: (seq: number, row: RowRef) => boolean | void): void {
    const row: RowRef = { chunk: undefined as unknown as Chunk, index: 0 };
    for (const chunk of this.#chunks) {
      row.chunk = chunk;
      for (let i = 0; i < chunk.length; i++) {
        if (chunk.alive[i] === 0) continue;
        row.index = i;
        if (visit(chunk.seqs.at(i), row) === false) return;
      }
    }
  }

  /**
   * The rows with seq above `after`, in seq order, a chunk's run at a
   * time until `visit` returns false; `run` is reused. Unlike forEach it
   * finds its start by seq, not by position, so a caller may stop, let
   * the table change, and go on from the last seq it took (the checkpoint
   * writer does, between frames). By runs, not a call a row: the
   * checkpoint writer packs every live row, millions, each time.
   */
  forEachRunAfter(after: number, visit: (run: RowRun) => boolean): void {
    const chunks = this.#chunks;
    const first = this.#chunkFor(after);
    if (first === undefined) return;
    const run: RowRun = { seqs: first.seqs, cols: first.cols, alive: first.alive, from: 0, to: 0 };
    for (let c = chunks.indexOf(first); c < chunks.length; c++) {
      const chunk = chunks[c];
      let from = 0;
      if (chunk === first) {
        from = chunk.lowerBound(after);
        if (from < chunk.length && chunk.seqs.at(from) === after) from++;
      }
      run.seqs = chunk.seqs;
      run.cols = chunk.cols;
      run.alive = chunk.alive;
      run.from = from;
      run.to = chunk.length;
      if (!visit(run)) return;
    }
  }

  /**
   * Visits every live row in seq order like forEach, letting go of each
   * chunk once visited: the table ends empty, and never holds its rows and
   * what the caller builds from them at the same time.
   */
  consume(visit: (seq: number, row: RowRef) => void): void {
    const row: RowRef = { chunk: undefined as unknown as Chunk, index: 0 };
    for (let chunk = this.#chunks.shift(); chunk !== undefined; chunk = this.#chunks.shift()) {
      row.chunk = chunk;
      for (let i = 0; i < chunk.length; i++) {
        if (chunk.alive[i] === 0) continue;
        row.index = i;
        visit(chunk.seqs.at(i), row);
      }
      this.#size -= chunk.live;
    }
  }

  /** Drops every row. */
  clear(): void {
    this.#chunks.length = 0;
    this.#spare = undefined;
    this.#size = 0;
  }

  // An empty chunk: the spare if there is one (its rows are all
  // overwritten before they count: put sets every column and the flag).
  #newChunk(): Chunk {
    const spare = this.#spare;
    if (spare !== undefined) {
      this.#spare = undefined;
      spare.length = 0;
      spare.live = 0;
      return spare;
    }
    this.#chunksMade++;
    return new Chunk(this.#width);
  }

  // The chunk whose range holds `seq`: the first whose last seq is >= it.
  #chunkFor(seq: number): Chunk | undefined {
    const chunks = this.#chunks;
    let lo = 0;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (chunks[mid].last < seq) lo = mid + 1;
      else hi = mid;
    }
    return chunks[lo];
  }

  // The row index for `seq`, its chunk and whether it is new in #slot.
  #slotFor(seq: number): number {
    const chunks = this.#chunks;
    const tail = chunks.at(-1);
    const slot = this.#slot;

    // The common case: a new highest seq.
    if (tail === undefined || seq > tail.last) {
      let chunk = tail;
      if (chunk === undefined || chunk.length === chunk.seqs.length) {
        if (chunk !== undefined && chunk.live * 2 < chunk.length) chunk.squeeze();
        if (chunk === undefined || chunk.length === chunk.seqs.length) {
          chunk = this.#newChunk();
          chunks.push(chunk);
        }
      }
      chunk.seqs.set(chunk.length, seq);
      chunk.alive[chunk.length] = 0;
      slot.chunk = chunk;
      slot.added = true;
      return chunk.length++;
    }

    let chunk = this.#chunkFor(seq) as Chunk;
    let index = chunk.lowerBound(seq);
    if (index < chunk.length && chunk.seqs.at(index) === seq) {
      slot.chunk = chunk;
      slot.added = chunk.alive[index] === 0;
      return index;
    }

    // A late seq: insert it in order, making room first.
    if (chunk.length === chunk.seqs.length) chunk.squeeze();
    if (chunk.length === chunk.seqs.length) {
      const upper = chunk.splitOff(this.#newChunk());
      chunks.splice(chunks.indexOf(chunk) + 1, 0, upper);
      if (seq > chunk.last) chunk = upper;
    }
    index = chunk.lowerBound(seq);
    chunk.openAt(index, seq);
    slot.chunk = chunk;
    slot.added = true;
    return index;
  }
}
