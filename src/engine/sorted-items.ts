// Items kept in order, the first taken at once. Most arrive already in
// order (publishes by seq, leases of one length by time): those join a
// run (run.ts), taken from the front at O(1); the rest (a requeue, a
// delay that ended, an entry of another length) go in a heap. Where the
// first item is, is whichever of the run's head and the heap's top comes
// first. An item's slot (told through `place`) says where it is, so that
// it can leave from the middle at once: -1 nowhere, i >= 0 at index i of
// the heap, <= -2 in the run.

import { Heap } from './heap.js';
import { Run } from './run.js';

export class SortedItems<T> {
  private readonly run: Run<T>;
  private readonly heap: Heap<T>;
  /**
   * The last item the run took: while the run holds any, a new item joins
   * it only if it comes after this one. Let go of once the run is empty;
   * until then it may be an item that has left (one object held longer).
   */
  private last: T | undefined;

  constructor(
    private readonly before: (a: T, b: T) => boolean,
    place: (item: T, slot: number) => void,
  ) {
    this.run = new Run<T>(place);
    this.heap = new Heap<T>(before, place);
  }

  get size(): number {
    return this.run.count + this.heap.size;
  }

  /** Places the run holds (Run.places) beside the heap's items. */
  get runPlaces(): number {
    return this.run.places;
  }

  /** The first item, left in place. */
  peek(): T | undefined {
    const head = this.run.peek();
    const top = this.heap.peek();
    if (head === undefined) return top;
    return top !== undefined && this.before(top, head) ? top : head;
  }

  /**
   * Up to `max` of the first items, in order, left in place (a listing):
   * as many of the run's as may be wanted, merged with the heap's, sorted
   * apart. Costs `max` plus the heap's size, not the run's.
   */
  first(max: number): T[] {
    const run = this.run.first(max);
    const heap = this.heap.toArray()
      .sort((a, b) => (this.before(a, b) ? -1 : this.before(b, a) ? 1 : 0));
    const items: T[] = [];
    let r = 0;
    let h = 0;
    while (items.length < max && (r < run.length || h < heap.length)) {
      const fromHeap = r === run.length || (h < heap.length && this.before(heap[h], run[r]));
      items.push(fromHeap ? heap[h++] : run[r++]);
    }
    return items;
  }

  push(item: T): void {
    if (this.run.count > 0 && !this.before(this.last as T, item)) {
      this.heap.push(item);
      return;
    }
    this.run.push(item);
    this.last = item;
  }

  pop(): T | undefined {
    const head = this.run.peek();
    const top = this.heap.peek();
    if (head === undefined || (top !== undefined && this.before(top, head))) {
      return this.heap.pop();
    }
    const item = this.run.shift();
    if (this.run.count === 0) this.last = undefined;
    return item;
  }

  /** Takes `item` out if it is where `slot` says. */
  remove(item: T, slot: number): boolean {
    if (slot >= 0) return this.heap.remove(item, slot);
    if (slot === -1 || !this.run.remove(item, slot)) return false;
    if (this.run.count === 0) this.last = undefined;
    return true;
  }
}
