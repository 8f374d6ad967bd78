// Entries due at a time (leases, expiries, delays), the earliest first,
// then by seq: a SortedItems (sorted-items.ts). Most arrive in that order,
// a lease or a queue's TTL being the same length each time: those sit in
// its run, so delivering and acking leases in order moves nothing, where
// a heap of 500 leases moved nine levels for each. An entry's `index` is
// its slot there: -1 nowhere, >= 0 in the heap, <= -2 in the run.

import { SortedItems } from './sorted-items.js';
import type { TimedEntry } from './types.js';

// Equal times go by seq, so that delays ending together release in the
// same order whether their messages are in memory or cold.
const byTime = (a: TimedEntry, b: TimedEntry) =>
  a.at !== b.at ? a.at < b.at : a.message.seq < b.message.seq;

const place = (entry: TimedEntry, slot: number) => {
  entry.index = slot;
};

export class TimedEntries extends SortedItems<TimedEntry> {
  constructor() {
    super(byTime, place);
  }

  /** Takes `entry` out if it is where its index says. */
  override remove(entry: TimedEntry, slot = entry.index): boolean {
    return super.remove(entry, slot);
  }
}
