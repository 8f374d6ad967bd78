// A channel's unacked deliveries by delivery tag, with the few Map
// operations the channel needs. Tags rise 1, 2, 3, ... (a no-ack
// delivery skips one) and are mostly acked soon and in order, so they sit
// in a ring at tag % capacity. A Map that every delivery filled and every
// ack emptied rebuilt its table every few hundred messages: tens of bytes
// a message at 5,000 msg/s; the ring allocates only when it grows.
//
//   ring (capacity 8):  [ 9 | - | - | - | 5 | - | 7 | 8 ]
//                             ^ next = 10     ^ low = 5
//
// Tags are whole numbers from the channel's counter, below 2^53 (a slot
// is tag & mask, exact for those). Every slot outside [low, next) is
// empty. A tag below `low` (one made unacked again by a rolled-back
// transaction, or one still held after thousands passed it, moved out
// below) lives in `others`, a Map.

/** First capacity; a power of two, as every capacity after it. */
const FIRST_CAPACITY = 64;
/** Empty slots per live one the window may span before it moves on. */
const MOST_HOLES_PER_ENTRY = 4;

export class DeliveryTags<T> {
  private ring: (T | undefined)[] = new Array<T | undefined>(FIRST_CAPACITY).fill(undefined);
  private mask = FIRST_CAPACITY - 1;
  /** Tags in [low, next) are in the ring; below low, in others. */
  private low = 0;
  private next = 0;
  private inRing = 0;
  private readonly others = new Map<number, T>();

  get size(): number {
    return this.inRing + this.others.size;
  }

  has(tag: number): boolean {
    return this.get(tag) !== undefined;
  }

  get(tag: number): T | undefined {
    if (tag >= this.low && tag < this.next) return this.ring[tag & this.mask];
    return this.others.get(tag);
  }

  set(tag: number, entry: T): void {
    if (tag < this.low) {
      this.others.set(tag, entry);
      return;
    }
    if (tag >= this.next) this.reach(tag);
    const slot = tag & this.mask;
    if (this.ring[slot] === undefined) this.inRing++;
    this.ring[slot] = entry;
  }

  delete(tag: number): boolean {
    if (tag < this.low || tag >= this.next) return this.others.delete(tag);
    const slot = tag & this.mask;
    if (this.ring[slot] === undefined) return false;

    this.ring[slot] = undefined;
    this.inRing--;
    while (this.low < this.next && this.ring[this.low & this.mask] === undefined) this.low++;
    return true;
  }

  clear(): void {
    this.ring.fill(undefined);
    this.low = this.next;
    this.inRing = 0;
    this.others.clear();
  }

  /** Tags in ascending order. */
  keys(): number[] {
    return this.entries().map(([tag]) => tag);
  }

  /** Entries in ascending order of their tags. */
  values(): T[] {
    return this.entries().map(([, entry]) => entry);
  }

  private entries(): Array<[number, T]> {
    const all: Array<[number, T]> = [...this.others].sort((a, b) => a[0] - b[0]);
    for (let tag = this.low; tag < this.next; tag++) {
      const entry = this.ring[tag & this.mask];
      if (entry !== undefined) all.push([tag, entry]);
    }
    return all;
  }

  /** Makes the window reach `tag`: moves it on when empty, else grows the
   * ring or, when it is mostly holes, moves the live ones to `others`. */
  private reach(tag: number): void {
    if (this.inRing === 0) {
      this.low = tag;
      this.next = tag + 1;
      return;
    }
    const span = tag + 1 - this.low;
    if (span > this.ring.length) {
      if (span > MOST_HOLES_PER_ENTRY * this.inRing && span > FIRST_CAPACITY) this.moveOut();
      else this.grow(span);
    }
    if (this.inRing === 0) this.low = tag;
    this.next = tag + 1;
  }

  private moveOut(): void {
    for (let tag = this.low; tag < this.next; tag++) {
      const entry = this.ring[tag & this.mask];
      if (entry !== undefined) this.others.set(tag, entry);
    }
    this.ring.fill(undefined);
    this.low = this.next;
    this.inRing = 0;
  }

  private grow(span: number): void {
    let capacity = this.ring.length * 2;
    while (capacity < span) capacity *= 2;
    const ring = new Array<T | undefined>(capacity).fill(undefined);
    for (let tag = this.low; tag < this.next; tag++) {
      ring[tag & (capacity - 1)] = this.ring[tag & this.mask];
    }
    this.ring = ring;
    this.mask = capacity - 1;
  }
}
