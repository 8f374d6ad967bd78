// A queue of items that came in order, taken from the front at O(1), that
// still lets any item leave from the middle at once: the fast lane beside
// a heap for the common case where items arrive already sorted
// (ready-messages.ts, timed-entries.ts). Its owner decides what is in
// order; the run only keeps arrival order.
//
// An item's slot (told through `place`) is -2 - p at position p, -1 once
// it left; a heap's slots are its indexes, >= 0, so one number says
// which of the two holds an item. A place left is emptied (null) and
// skipped when it comes to the front; the places taken from the front
// are let go of now and then.

/** Places taken from the front before they are let go of. */
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

  /** The first item, or undefined when none. */
  peek(): T | undefined {
    return this.count === 0 ? undefined : (this.items[this.head] as T);
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
    if (this.head >= COMPACT_AT && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.start += this.head;
      this.head = 0;
    }
  }
}
