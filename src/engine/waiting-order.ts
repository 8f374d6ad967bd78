// The order in which a reject-lowest-priority queue's messages became
// waiting, per priority (overflow.ts picks victims by it: the lowest
// priority first, the oldest of it first). Not seq order: a retried
// message waits again behind newer ones, and a message moved in from
// another queue keeps its older seq.
//
// Each time a message becomes waiting (published, moved in, retried,
// released) it gets the next number of a per-queue counter, kept on its
// hot object (Slots.order) or cold row (cold-rows.ts), and (seq, number)
// is appended to its priority's ring: 16 bytes a waiting message, no
// object. Leaving waiting (delivered, taken, settled) only clears the
// number; the ring entry is judged when a walk comes to it, by asking the
// queue whether that seq still waits with that number (`lookUp`), and
// rings are compacted once stale entries outnumber live ones.

import { MAX_PRIORITY } from './types.js';

/** A waiting message as a victim walk sees it. */
export interface Victim {
  seq: number;
  priority: number;
  bytes: number;
}

/** Body bytes of `seq` if it still waits with wait number `order`, else -1. */
export type WaitLookUp = (seq: number, order: number) => number;

const ORDER_LIMIT = 0xffff_ffff;
const MIN_RING = 32;

export class WaitingOrder {
  readonly #rings: Ring[] = Array.from({ length: MAX_PRIORITY + 1 }, () => new Ring());
  #next = 1;

  constructor(private readonly lookUp: WaitLookUp) {}

  /**
   * Appends a message that just became waiting; returns its wait number
   * (never 0, which means none). `live` is how many of its priority wait,
   * this one included, for compaction.
   */
  push(priority: number, seq: number, live: number): number {
    const order = this.#next;
    // The number is a u32 column of a cold row. Wrapping is harmless: an
    // entry lives at most until its ring is compacted, far sooner than
    // four billion more messages become waiting.
    this.#next = order === ORDER_LIMIT ? 1 : order + 1;
    const ring = this.#rings[priority];
    if (ring.length > 2 * live + 1024) ring.keep((s, o) => this.lookUp(s, o) >= 0);
    ring.push(seq, order);
    return order;
  }

  /** The waiting messages of `priority`, oldest first. */
  *ofPriority(priority: number): Generator<Victim> {
    const ring = this.#rings[priority];
    for (let at = 0; at < ring.length; at++) {
      const seq = ring.seqAt(at);
      const bytes = this.lookUp(seq, ring.orderAt(at));
      if (bytes < 0) {
        // Stale entries in front are gone for good: numbers never return.
        if (at === 0) {
          ring.shift();
          at--;
        }
        continue;
      }
      yield { seq, priority, bytes };
    }
  }
}

/** (seq, wait number) pairs in one growing Float64Array, with a moving head. */
class Ring {
  #pairs = new Float64Array(2 * MIN_RING);
  #head = 0;
  #tail = 0;

  get length(): number {
    return this.#tail - this.#head;
  }

  seqAt(at: number): number {
    return this.#pairs[2 * (this.#head + at)];
  }

  orderAt(at: number): number {
    return this.#pairs[2 * (this.#head + at) + 1];
  }

  push(seq: number, order: number): void {
    if (2 * this.#tail === this.#pairs.length) this.#resize(Math.max(MIN_RING, 2 * this.length));
    this.#pairs[2 * this.#tail] = seq;
    this.#pairs[2 * this.#tail + 1] = order;
    this.#tail++;
  }

  shift(): void {
    this.#head++;
    if (this.#head === this.#tail) this.#head = this.#tail = 0;
  }

  /** Keeps only the entries `live` says are, in order. */
  keep(live: (seq: number, order: number) => boolean): void {
    const pairs = this.#pairs;
    let to = 0;
    for (let at = this.#head; at < this.#tail; at++) {
      const seq = pairs[2 * at];
      const order = pairs[2 * at + 1];
      if (!live(seq, order)) continue;
      pairs[2 * to] = seq;
      pairs[2 * to + 1] = order;
      to++;
    }
    this.#head = 0;
    this.#tail = to;
    if (this.#pairs.length > 4 * MIN_RING && 4 * to < this.#pairs.length / 2) {
      this.#resize(Math.max(MIN_RING, 2 * to));
    }
  }

  // Moves the live entries to the front of an array of `capacity` pairs
  // (at least as many as are live).
  #resize(capacity: number): void {
    const length = this.length;
    const pairs = new Float64Array(2 * Math.max(capacity, length + 1));
    pairs.set(this.#pairs.subarray(2 * this.#head, 2 * this.#tail));
    this.#pairs = pairs;
    this.#head = 0;
    this.#tail = length;
  }
}
