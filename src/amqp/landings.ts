// A channel's publish batches on their way to disk, by number: a
// synchronous method that follows publishes (a purge, tx.commit) waits
// until every batch handed to the broker before it has settled.
//
// Counted, not chained: a Promise.all over the previous landing and each
// batch's outcome cost every socket chunk about half a kilobyte (the
// array, a catch, the combinator's closures), more than a small publish
// itself, while almost no batch has anyone waiting for it.

interface Waiter {
  /** The newest batch it waits for, and every one before it. */
  upTo: number;
  resolve: () => void;
}

const LANDED: Promise<void> = Promise.resolve();

export class Landings {
  #started = 0;
  /** Numbers rise, and a Set keeps the order they came in: oldest first. */
  readonly #inFlight = new Set<number>();
  #waiters: Waiter[] = [];

  /** A batch is handed to the broker; its number is for `landed`. */
  start(): number {
    const batch = ++this.#started;
    this.#inFlight.add(batch);
    return batch;
  }

  /** The batch settled, stored or refused. */
  landed(batch: number): void {
    if (!this.#inFlight.delete(batch) || this.#waiters.length === 0) return;
    const oldest = this.#inFlight.size === 0
      ? Infinity
      : (this.#inFlight.values().next().value as number);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) {
      if (waiter.upTo < oldest) waiter.resolve();
      else this.#waiters.push(waiter);
    }
  }

  /** Settles once every batch started so far has landed; never rejects. */
  all(): Promise<void> {
    if (this.#inFlight.size === 0) return LANDED;
    return new Promise((resolve) => this.#waiters.push({ upTo: this.#started, resolve }));
  }
}
