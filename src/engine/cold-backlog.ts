// The cold part of a queue's ready backlog: messages whose bodies stay on
// disk, known here only by seq and body size, one deque per priority, in
// typed arrays (8 bytes a message while seqs are below 2^32, no JS
// object: seq-column.ts). The queue engine keeps
// a bounded window of ready messages hot (objects with bodies) and pages
// cold ones in, highest priority and lowest seq first, as the window
// drains (queue.ts). Reading bodies back is the broker's business (it
// passes the engine a PageIn function); this file only keeps order.
//
// Within a priority, the deque is sorted by seq. A new publish joins at
// the tail; a message coming back (a retry, a delay that ended, a move in
// from another queue keeps its old seq) is inserted in order. Removal from
// the middle (a purge, a redrive, a drop-oldest) marks the entry dead;
// dead entries are skipped at the head and chunks are freed as the head
// passes them. A FIFO queue keeps one deque per message group
// (fifo-groups.ts), so a deque starts small and grows by doubling: ten
// thousand groups of a few messages must not cost ten thousand full chunks.

import { SeqColumn } from '../storage/seq-column.js';
import { MAX_PRIORITY } from './types.js';

const CHUNK_ENTRIES = 8 * 1024;
const FIRST_CHUNK_ENTRIES = 16;
/** Marks a removed entry; no body is this large (MAX_RECORD_BYTES is 64 MiB). */
const DEAD = 0xffffffff;

class Chunk {
  seqs: SeqColumn;
  bytes: Uint32Array;
  head = 0;
  tail = 0;

  constructor(capacity: number) {
    this.seqs = new SeqColumn(capacity);
    this.bytes = new Uint32Array(capacity);
  }

  get capacity(): number {
    return this.seqs.length;
  }

  /** Doubles a small chunk in place of a second one. */
  grow(): void {
    const seqs = new SeqColumn(Math.min(CHUNK_ENTRIES, this.capacity * 2));
    const bytes = new Uint32Array(seqs.length);
    seqs.copyFrom(this.seqs, this.head, this.tail);
    bytes.set(this.bytes.subarray(this.head, this.tail));
    this.tail -= this.head;
    this.head = 0;
    this.seqs = seqs;
    this.bytes = bytes;
  }

  /** Moves the upper half of the entries into a new chunk and returns it. */
  splitOff(): Chunk {
    const half = (this.head + this.tail) >>> 1;
    const upper = new Chunk(CHUNK_ENTRIES);
    upper.seqs.copyFrom(this.seqs, half, this.tail);
    upper.bytes.set(this.bytes.subarray(half, this.tail));
    upper.tail = this.tail - half;
    this.tail = half;
    return upper;
  }
}

/** One priority's cold messages, oldest (lowest seq) first. */
export class ColdDeque {
  readonly #chunks: Chunk[] = [];
  count = 0;
  bytes = 0;

  /**
   * The seq a new entry must exceed to be pushed; -1 when there is no
   * entry. Removed entries count: they stay in place, marked dead, and
   * the entries must stay in seq order for the searches (a deque whose
   * entries were all removed used to take any seq at its end).
   */
  get lastSeq(): number {
    const tail = this.#chunks.at(-1);
    if (tail === undefined || tail.head === tail.tail) return -1;
    return tail.seqs.at(tail.tail - 1);
  }

  push(seq: number, bytes: number): void {
    let tail = this.#chunks.at(-1);
    if (tail !== undefined && tail.tail === tail.capacity && tail.capacity < CHUNK_ENTRIES &&
      this.#chunks.length === 1) {
      tail.grow();
    }
    if (tail === undefined || tail.tail === tail.capacity) {
      tail = new Chunk(tail === undefined ? FIRST_CHUNK_ENTRIES : CHUNK_ENTRIES);
      this.#chunks.push(tail);
    }
    tail.seqs.set(tail.tail, seq);
    tail.bytes[tail.tail++] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Adds an entry in seq order wherever it falls; `seq` must not be here. */
  insert(seq: number, bytes: number): void {
    if (this.#chunks.length === 0 || seq > this.lastSeq) {
      this.push(seq, bytes);
      return;
    }
    let chunk = this.#chunkFor(seq) ?? (this.#chunks.at(-1) as Chunk);
    if (chunk.tail === chunk.capacity && chunk.head === 0) {
      if (chunk.capacity < CHUNK_ENTRIES) {
        chunk.grow();
      } else {
        const upper = chunk.splitOff();
        this.#chunks.splice(this.#chunks.indexOf(chunk) + 1, 0, upper);
        if (seq > chunk.seqs.at(chunk.tail - 1)) chunk = upper;
      }
    }
    let at = chunk.head;
    for (let hi = chunk.tail; at < hi; ) {
      const mid = (at + hi) >>> 1;
      if (chunk.seqs.at(mid) < seq) at = mid + 1;
      else hi = mid;
    }
    if (chunk.tail < chunk.capacity) {
      chunk.seqs.copyWithin(at + 1, at, chunk.tail);
      chunk.bytes.copyWithin(at + 1, at, chunk.tail);
      chunk.tail++;
    } else {
      // Full at the back but not at the front: the entries before `at`
      // move down one instead.
      chunk.seqs.copyWithin(chunk.head - 1, chunk.head, at);
      chunk.bytes.copyWithin(chunk.head - 1, chunk.head, at);
      chunk.head--;
      at--;
    }
    chunk.seqs.set(at, seq);
    chunk.bytes[at] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Seq of the last entry, or undefined. */
  peekLast(): number | undefined {
    return this.count === 0 ? undefined : this.lastSeq;
  }

  /** Seq of the first live entry, or undefined. */
  peek(): number | undefined {
    const chunk = this.#front();
    return chunk === undefined ? undefined : chunk.seqs.at(chunk.head);
  }

  /**
   * Takes up to `max` entries from the front into `seqs` and `sizes`,
   * stopping before their bodies pass `maxBytes` (but taking one at least).
   */
  shift(max: number, maxBytes: number, seqs: number[], sizes: number[]): void {
    let bytes = 0;
    for (let chunk = this.#front(); chunk !== undefined && max > 0; chunk = this.#front()) {
      const size = chunk.bytes[chunk.head];
      if (seqs.length > 0 && bytes + size > maxBytes) return;
      bytes += size;
      seqs.push(chunk.seqs.at(chunk.head));
      sizes.push(size);
      chunk.head++;
      this.count--;
      this.bytes -= size;
      max--;
    }
  }

  /** The seqs shift() would take now, left in place (for a read ahead). */
  peekPage(max: number, maxBytes: number): number[] {
    const seqs: number[] = [];
    let bytes = 0;
    this.forEach((seq, size) => {
      if (seqs.length >= max || (seqs.length > 0 && bytes + size > maxBytes)) return false;
      bytes += size;
      seqs.push(seq);
    });
    return seqs;
  }

  /** Removes `seq`; its body size, or -1 when it is not here. */
  remove(seq: number): number {
    const found = this.#find(seq);
    if (found === undefined) return -1;
    const [chunk, at] = found;
    const size = chunk.bytes[at];
    chunk.bytes[at] = DEAD;
    this.count--;
    this.bytes -= size;
    return size;
  }

  has(seq: number): boolean {
    return this.#find(seq) !== undefined;
  }

  // The live entry of `seq`. A seq taken out and put back (a message that
  // left and came back) may sit beside its own dead entry.
  #find(seq: number): [Chunk, number] | undefined {
    const chunk = this.#chunkFor(seq);
    if (chunk === undefined) return undefined;
    let at = chunk.head;
    for (let hi = chunk.tail; at < hi; ) {
      const mid = (at + hi) >>> 1;
      if (chunk.seqs.at(mid) < seq) at = mid + 1;
      else hi = mid;
    }
    for (; at < chunk.tail && chunk.seqs.at(at) === seq; at++) {
      if (chunk.bytes[at] !== DEAD) return [chunk, at];
    }
    return undefined;
  }

  /** Live entries in order; stops when `visit` returns false. */
  forEach(visit: (seq: number, bytes: number) => boolean | void): void {
    for (const chunk of this.#chunks) {
      for (let i = chunk.head; i < chunk.tail; i++) {
        if (chunk.bytes[i] === DEAD) continue;
        if (visit(chunk.seqs.at(i), chunk.bytes[i]) === false) return;
      }
    }
  }

  clear(): void {
    this.#chunks.length = 0;
    this.count = 0;
    this.bytes = 0;
  }

  // The first chunk with a live entry at its head, freeing spent ones.
  #front(): Chunk | undefined {
    while (this.#chunks.length > 0) {
      const chunk = this.#chunks[0];
      while (chunk.head < chunk.tail && chunk.bytes[chunk.head] === DEAD) chunk.head++;
      if (chunk.head < chunk.tail) return chunk;
      if (chunk.tail < chunk.capacity && this.#chunks.length === 1) {
        // The only chunk, still filling: keep it rather than reallocate.
        return undefined;
      }
      this.#chunks.shift();
    }
    return undefined;
  }

  #chunkFor(seq: number): Chunk | undefined {
    const chunks = this.#chunks;
    let lo = 0;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const chunk = chunks[mid];
      if (chunk.tail === chunk.head || chunk.seqs.at(chunk.tail - 1) < seq) lo = mid + 1;
      else hi = mid;
    }
    return chunks[lo];
  }
}

/** Where a cold entry was and how big its body is. */
export interface ColdEntry {
  seq: number;
  priority: number;
  bytes: number;
}

/** A queue's cold messages, by priority. */
export class ColdBacklog {
  readonly #deques = Array.from({ length: MAX_PRIORITY + 1 }, () => new ColdDeque());
  count = 0;
  bytes = 0;

  countOf(priority: number): number {
    return this.#deques[priority].count;
  }

  /** Whether a message may join: behind every cold one of its priority. */
  accepts(priority: number, seq: number): boolean {
    return seq > this.#deques[priority].lastSeq;
  }

  push(priority: number, seq: number, bytes: number): void {
    this.#deques[priority].push(seq, bytes);
    this.count++;
    this.bytes += bytes;
  }

  /** Adds an entry in seq order, anywhere in its priority (a message coming back). */
  insert(priority: number, seq: number, bytes: number): void {
    this.#deques[priority].insert(seq, bytes);
    this.count++;
    this.bytes += bytes;
  }

  /**
   * The priority whose oldest cold message comes before the hot message
   * (`priority`, `seq`) in delivery order (higher priority, then lower
   * seq), or -1 when none does. Pass priority -1 when nothing is hot.
   */
  ahead(priority: number, seq: number): number {
    if (this.count === 0) return -1;
    for (let p = MAX_PRIORITY; p >= Math.max(priority, 0); p--) {
      const head = this.#deques[p].peek();
      if (head === undefined) continue;
      if (p > priority || head < seq) return p;
    }
    return -1;
  }

  /** Takes up to `max` of the oldest entries of `priority`, up to `maxBytes` of bodies. */
  take(
    priority: number,
    max: number,
    maxBytes = Number.POSITIVE_INFINITY,
  ): { seqs: number[]; sizes: number[] } {
    const seqs: number[] = [];
    const sizes: number[] = [];
    const deque = this.#deques[priority];
    deque.shift(max, maxBytes, seqs, sizes);
    this.count -= seqs.length;
    for (const size of sizes) this.bytes -= size;
    return { seqs, sizes };
  }

  /** The seqs take() would take now, left in place. */
  peekPage(priority: number, max: number, maxBytes = Number.POSITIVE_INFINITY): number[] {
    return this.#deques[priority].peekPage(max, maxBytes);
  }

  /** The highest priority holding cold messages, or -1. */
  highest(): number {
    for (let p = MAX_PRIORITY; p >= 0; p--) if (this.#deques[p].count > 0) return p;
    return -1;
  }

  /** The entry with the lowest seq over all priorities. */
  oldest(): ColdEntry | undefined {
    let found: ColdEntry | undefined;
    for (let p = 0; p <= MAX_PRIORITY; p++) {
      const head = this.#deques[p].peek();
      if (head !== undefined && (found === undefined || head < found.seq)) {
        found = { seq: head, priority: p, bytes: 0 };
      }
    }
    return found;
  }

  /** Removes `seq`; what it was, or undefined when it is not cold. */
  remove(seq: number): ColdEntry | undefined {
    for (let p = 0; p <= MAX_PRIORITY; p++) {
      const bytes = this.#deques[p].remove(seq);
      if (bytes < 0) continue;
      this.count--;
      this.bytes -= bytes;
      return { seq, priority: p, bytes };
    }
    return undefined;
  }

  has(seq: number): boolean {
    return this.#deques.some((deque) => deque.has(seq));
  }

  /** Every seq, in seq order over all priorities (8 bytes each, no objects). */
  seqs(): number[] {
    const seqs: number[] = [];
    for (const deque of this.#deques) deque.forEach((seq) => void seqs.push(seq));
    return seqs.sort((a, b) => a - b);
  }

  /** Empties the backlog; returns every seq it held. */
  clear(): number[] {
    const seqs: number[] = [];
    for (const deque of this.#deques) {
      deque.forEach((seq) => void seqs.push(seq));
      deque.clear();
    }
    this.count = 0;
    this.bytes = 0;
    return seqs;
  }
}
