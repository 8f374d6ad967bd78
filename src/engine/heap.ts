// A binary min-heap ordered by a comparator, that tells each item where it
// sits (`place`) so that an item can be removed from the middle in
// O(log n). The engine removes a message from its heaps the moment it is
// settled: a heap that kept settled messages until they surfaced would
// hold their bodies for as long as a lease or a TTL lasts.

export class Heap<T> {
  private readonly items: T[] = [];

  constructor(
    private readonly before: (a: T, b: T) => boolean,
    /** Told every new position of an item; -1 when it leaves the heap. */
    private readonly place: (item: T, index: number) => void = () => {},
  ) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  /** Every item, in no particular order: a copy. */
  toArray(): T[] {
    return this.items.slice();
  }

  push(item: T): void {
    this.items.push(item);
    this.up(this.items.length - 1);
  }

  pop(): T | undefined {
    const top = this.items[0];
    if (top !== undefined) this.removeAt(0);
    return top;
  }

  /** Removes `item` if it sits at `index`; false when it does not. */
  remove(item: T, index: number): boolean {
    if (index < 0 || this.items[index] !== item) return false;
    this.removeAt(index);
    return true;
  }

  clear(): void {
    for (const item of this.items) this.place(item, -1);
    this.items.length = 0;
  }

  private removeAt(index: number): void {
    const items = this.items;
    const removed = items[index];
    const last = items.pop() as T;
    this.place(removed, -1);
    if (index === items.length) return;

    items[index] = last;
    this.place(last, index);
    this.down(index);
    this.up(index);
  }

  private up(index: number): void {
    const items = this.items;
    const item = items[index];
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.before(item, items[parent])) break;
      items[index] = items[parent];
      this.place(items[index], index);
      index = parent;
    }
    items[index] = item;
    this.place(item, index);
  }

  private down(index: number): void {
    const items = this.items;
    const item = items[index];
    const length = items.length;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= length) break;
      const right = left + 1;
      const child =
        right < length && this.before(items[right], items[left]) ? right : left;
      if (!this.before(items[child], item)) break;
      items[index] = items[child];
      this.place(items[index], index);
      index = child;
    }
    items[index] = item;
    this.place(item, index);
  }
}
