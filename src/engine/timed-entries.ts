// Entries due at a time (leases, expiries, delays), the earliest first,
// then by seq. Most arrive in that order, a lease or a queue's TTL being
// the same length each time: those join a run (run.ts), so delivering
// and acking leases in order moves nothing, where a heap of 500 leases
// moved nine levels for each. The rest go in a heap. An entry's `index`
// says where it is: -1 nowhere, >= 0 in the heap, <= -2 in the run.

import { Heap } from './heap.js';
import { Run } from './run.js';
import type { TimedEntry } from './types.js';

// Equal times go by seq, so that delays ending together release in the
// same order whether their messages are in memory or cold.
const byTime = (a: TimedEntry, b: TimedEntry) =>
  a.at !== b.at ? a.at < b.at : a.message.seq < b.message.seq;

const place = (entry: TimedEntry, slot: number) => {
  entry.index = slot;
};

export class TimedEntries {
  private readonly run = new Run<TimedEntry>(place);
  private readonly heap = new Heap<TimedEntry>(byTime, place);
  /** The last entry the run took, by its time and seq (not kept itself). */
  private lastAt = 0;
  private lastSeq = 0;

  get size(): number {
    return this.run.count + this.heap.size;
  }

  /** Places the run holds (Run.places) beside the heap's entries. */
  get runPlaces(): number {
    return this.run.places;
  }

  /** The earliest entry, left in place. */
  peek(): TimedEntry | undefined {
    const head = this.run.peek();
    const top = this.heap.peek();
    if (head === undefined) return top;
    return top !== undefined && byTime(top, head) ? top : head;
  }

  push(entry: TimedEntry): void {
    const seq = entry.message.seq;
    const inOrder = this.run.count === 0 || entry.at > this.lastAt ||
      (entry.at === this.lastAt && seq > this.lastSeq);
    if (!inOrder) {
      this.heap.push(entry);
      return;
    }
    this.run.push(entry);
    this.lastAt = entry.at;
    this.lastSeq = seq;
  }

  pop(): TimedEntry | undefined {
    const head = this.run.peek();
    const top = this.heap.peek();
    if (head === undefined || (top !== undefined && byTime(top, head))) return this.heap.pop();
    return this.run.shift();
  }

  /** Takes `entry` out if it is where its index says. */
  remove(entry: TimedEntry): boolean {
    const slot = entry.index;
    if (slot >= 0) return this.heap.remove(entry, slot);
    if (slot === -1) return false;
    return this.run.remove(entry, slot);
  }
}
