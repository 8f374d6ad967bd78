// Delivery accounting: which messages each producer had confirmed, which
// the consumers acked, and so which were lost, duplicated or overtaken.
// One bitset per producer keeps this at a bit per message.

export interface DeliveryCounts {
  /** Publishes the broker confirmed. */
  confirmed: number;
  /** Distinct messages consumed (acked, or delivered in no-ack mode). */
  consumed: number;
  /** Confirmed, never consumed. */
  lost: number;
  /** Consumed again after their first consumption. */
  duplicated: number;
  /**
   * Consumed by a consumer after it had consumed a later message of the
   * same producer. Per consumer: competing consumers interleave, but each
   * should see a producer's messages in order (barring redeliveries and
   * priorities, which reorder on purpose).
   */
  outOfOrder: number;
  /** Consumed without having been confirmed (e.g. confirm still on the way). */
  unconfirmedConsumed: number;
}

class BitSet {
  #bits = new Uint8Array(1024);

  /** Sets bit `n`; answers whether it was already set. */
  set(n: number): boolean {
    const byte = n >>> 3;
    if (byte >= this.#bits.length) this.#grow(byte);
    const mask = 1 << (n & 7);
    const was = (this.#bits[byte] & mask) !== 0;
    this.#bits[byte] |= mask;
    return was;
  }

  has(n: number): boolean {
    const byte = n >>> 3;
    return byte < this.#bits.length && (this.#bits[byte] & (1 << (n & 7))) !== 0;
  }

  #grow(byte: number): void {
    let length = this.#bits.length;
    while (length <= byte) length *= 2;
    const bigger = new Uint8Array(length);
    bigger.set(this.#bits);
    this.#bits = bigger;
  }
}

interface ProducerBook {
  confirmed: BitSet;
  consumed: BitSet;
  /** Highest seq each consumer has consumed, by consumer index. */
  highestConsumed: number[];
  /** Highest seq sent plus one: the range to look for losses in. */
  sentUpTo: number;
}

export class DeliveryTracker {
  readonly #books: ProducerBook[] = [];
  #confirmed = 0;
  #consumed = 0;
  #duplicated = 0;
  #outOfOrder = 0;
  /** Stamps from producers this run does not know (another run's leftovers). */
  foreign = 0;

  constructor(producers: number) {
    for (let p = 0; p < producers; p++) {
      this.#books.push({
        confirmed: new BitSet(),
        consumed: new BitSet(),
        highestConsumed: [],
        sentUpTo: 0,
      });
    }
  }

  sent(producer: number, seq: number): void {
    const book = this.#books[producer];
    if (seq >= book.sentUpTo) book.sentUpTo = seq + 1;
  }

  confirmed(producer: number, seq: number): void {
    if (!this.#books[producer].confirmed.set(seq)) this.#confirmed++;
  }

  /** Records one consumption by `consumer`; answers false for a duplicate. */
  consumed(producer: number, seq: number, consumer = 0): boolean {
    const book = this.#books[producer];
    if (book === undefined) {
      this.foreign++;
      return false;
    }
    if (book.consumed.set(seq)) {
      this.#duplicated++;
      return false;
    }
    this.#consumed++;
    const highest = book.highestConsumed[consumer] ?? -1;
    if (seq < highest) this.#outOfOrder++;
    else book.highestConsumed[consumer] = seq;
    return true;
  }

  get confirmedCount(): number {
    return this.#confirmed;
  }

  get consumedCount(): number {
    return this.#consumed;
  }

  /** Confirmed messages not consumed yet: the backlog as the client sees it. */
  get outstanding(): number {
    return Math.max(0, this.#confirmed - this.#consumed);
  }

  /** Walks every producer's range once; call at the end of a run. */
  counts(): DeliveryCounts {
    let lost = 0;
    let unconfirmedConsumed = 0;
    for (const book of this.#books) {
      for (let seq = 0; seq < book.sentUpTo; seq++) {
        const confirmed = book.confirmed.has(seq);
        const consumed = book.consumed.has(seq);
        if (confirmed && !consumed) lost++;
        if (consumed && !confirmed) unconfirmedConsumed++;
      }
    }
    return {
      confirmed: this.#confirmed,
      consumed: this.#consumed,
      lost,
      duplicated: this.#duplicated,
      outOfOrder: this.#outOfOrder,
      unconfirmedConsumed,
    };
  }
}
