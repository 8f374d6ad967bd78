// Deduplication by producer id (README, "Semantics in brief"): an id seen
// again within the queue's window is stored once. Ids are kept in a Map
// and a list in arrival order, so the expired ones leave from the front.

/**
 * Ids remembered per queue by default (the `dedupMaxIds` setting): past
 * that the oldest are forgotten before their window ends, so a producer
 * that sends ids at 50,000/s does not make the queue hold 15 million of
 * them (issue #3). Replay keeps the newest that many too
 * (broker/recovery.ts).
 */
export const DEDUP_MAX_IDS = 100_000;
/** The most a queue may remember: about 100 bytes an id, a gigabyte. */
export const MAX_DEDUP_IDS = 10_000_000;

export class DedupWindow {
  private readonly seen = new Map<string, number>();
  private readonly order: { at: number; id: string }[] = [];
  private head = 0;

  /** True when `id` was remembered within `windowMs` before `now`. */
  has(id: string, now: number, windowMs: number): boolean {
    this.forgetBefore(now - windowMs);
    return this.seen.has(id);
  }

  /** Remembers `id`, forgetting the oldest past `maxIds`. */
  remember(id: string, at: number, maxIds = DEDUP_MAX_IDS): void {
    this.seen.set(id, at);
    this.order.push({ at, id });
    while (this.seen.size > maxIds && this.head < this.order.length) {
      this.dropOldest();
    }
  }

  forget(id: string): void {
    this.seen.delete(id);
  }

  private forgetBefore(horizon: number): void {
    while (this.head < this.order.length && this.order[this.head].at <= horizon) {
      this.dropOldest();
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order.splice(0, this.head);
      this.head = 0;
    }
  }

  private dropOldest(): void {
    const { id, at } = this.order[this.head++];
    if (this.seen.get(id) === at) this.seen.delete(id);
  }
}
