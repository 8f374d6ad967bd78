// A queue of items that came in order, taken from the front at O(1), that
// still lets any item leave from the middle at once: the fast lane beside
// a heap for the common case where items arrive already sorted
// (ready-messages.ts, timed-entries.ts). Its owner decides what is in
// order; the run only keeps arrival order.
//
// An item's slot (told through `place`) is -2 - p at position p, -1 once
// it left; a heap's slots are its indexes, >= 0, so one number says
// which of the two holds an item. A place left is emptied (null) and
// skipped when it comes to the front; once emptied places are half the
// run's, they are let go of (closeUp).

/** Places a run keeps before emptied ones are let go of. */
const COMPACT_AT = 1024;

/** The slot of the item at run position `position`. */
export function runSlot(position: number): number {
  return -2 - position;
}

export class Run<T> {
  /** items[i] is at position start + i; null once taken out. */
  private items: (T | null)[] = [];
  private start = 0;
  private head = 0;
  count = 0;

  constructor(private readonly place: (item: T, slot: number) => void) {}

  /** Places held, emptied ones included: what the run costs in memory. */
  get places(): number {
    return this.items.length;
  }

  /** The first item, or undefined when none. */
  peek(): T | undefined {
    return this.count === 0 ? undefined : (this.items[this.head] as T);
  }

  /** Up to `max` items from the front, in order, left in place. */
  first(max: number): T[] {
    const items: T[] = [];
    for (let i = this.head; i < this.items.length && items.length < max; i++) {
      const item = this.items[i];
      if (item !== null) items.push(item);
    }
    return items;
  }

  push(item: T): void {
    this.place(item, runSlot(this.start + this.items.length));
    this.items.push(item);
    this.count++;
  }

  /** Takes the first item out; the run must not be empty. */
  shift(): T {
    const item = this.items[this.head] as T;
    this.place(item, -1);
    this.items[this.head++] = null;
    this.count--;
    this.skipEmpty();
    return item;
  }

  /** Takes out `item` if `slot` (<= -2) says where it is; false when not there. */
  remove(item: T, slot: number): boolean {
    const at = -2 - slot - this.start;
    if (at < this.head || at >= this.items.length || this.items[at] !== item) return false;
    this.place(item, -1);
    this.items[at] = null;
    this.count--;
    if (at === this.head) this.skipEmpty();
    else this.closeUp();
    return true;
  }

  private skipEmpty(): void {
    if (this.count === 0) {
      this.start += this.items.length;
      this.items = [];
      this.head = 0;
      return;
    }
    while (this.items[this.head] === null) this.head++;
    this.closeUp();
  }

  // Lets go of emptied places once they are half the run's. Not only
  // those in front: while one item stays at the front (a lease an AMQP
  // consumer holds for its 30 minutes, an expiry of a message that waits
  // out its TTL), each item after it that left (acked) would keep its
  // place until then, about 9 bytes a message through the queue. A
  // closing up costs at most as many moves as places emptied since the
  // last one.
  private closeUp(): void {
    const items = this.items;
    if (items.length < COMPACT_AT || this.count * 2 > items.length) return;
    if (items.length - this.head === this.count) {
      // Emptied in front only: the items keep their positions.
      this.items = items.slice(this.head);
      this.start += this.head;
      this.head = 0;
      return;
    }
    // Past every position used so far, so no old slot names a new place.
    const start = this.start + items.length;
    const kept: (T | null)[] = [];
    for (let i = this.head; i < items.length; i++) {
      const item = items[i];
      if (item === null) continue;
      this.place(item, runSlot(start + kept.length));
      kept.push(item);
    }
    this.items = kept;
    this.start = start;
    this.head = 0;
  }
}
