// Which waiting message in memory is the oldest (lowest seq), for a
// drop-oldest queue (README, "Graceful degradation"): kept only for that
// policy, as waiting-order.ts is for reject-lowest-priority.
//
// A queue's messages in memory sit in a Map, in the order they came into
// memory. That is seq order for new publishes, but not for a message that
// comes in behind later ones: a dead letter or a redriven message keeps
// its first arrival's seq, and a cold page is read back behind newer
// messages. So the first waiting message in the Map, F, is the oldest of
// all but those that came in behind a message with a higher seq; only
// those are kept here, in a heap of seqs, with those that became waiting
// again after a delivery (their place in the Map is older than their
// return). The oldest waiting is then F or the heap's lowest live seq:
// a message waiting after F with a lower seq came in behind F.
//
//   Map order:   2  3  [1]  4  5  [0]      heap: 0 1
//                F
//
// New publishes, which come in order, cost a comparison. Entries of
// messages that left or were delivered are dropped when they come to the
// top, and all at once when they are over twice the messages in memory.

import { Heap } from './heap.js';
import type { Message } from './types.js';

/** Entries kept beyond twice the messages in memory before a rebuild. */
const SLACK = 1024;

export class OldestInMemory {
  /** The highest seq that came into memory. */
  #highest = -1;
  readonly #behind = new Heap<number>((a, b) => a < b);

  /** Starts on a queue that holds `messages` already (the policy was just set). */
  constructor(private readonly messages: Map<number, Message>) {
    this.#rebuild();
  }

  /** Seqs kept in the heap, stale ones included: what this costs. */
  get kept(): number {
    return this.#behind.size;
  }

  /**
   * `message` became waiting in memory: it came in (after it was put in the
   * Map) or came back from a consumer.
   */
  waiting(message: Message): void {
    if (message.seq > this.#highest) {
      this.#highest = message.seq;
      return;
    }
    this.#behind.push(message.seq);
    if (this.#behind.size > 2 * this.messages.size + SLACK) this.#rebuild();
  }

  /** The waiting message in memory with the lowest seq, or undefined. */
  oldest(): Message | undefined {
    // In-flight messages are skipped: few, bounded by the consumers' prefetch.
    let first: Message | undefined;
    for (const message of this.messages.values()) {
      if (message.state !== 'in-flight') {
        first = message;
        break;
      }
    }
    for (let seq = this.#behind.peek(); seq !== undefined; seq = this.#behind.peek()) {
      const behind = this.messages.get(seq);
      if (behind !== undefined && behind.state !== 'in-flight') {
        return first === undefined || behind.seq < first.seq ? behind : first;
      }
      // Gone, or delivered: back in the heap if it waits again (waiting()).
      this.#behind.pop();
    }
    return first;
  }

  // The heap anew from the Map: every waiting message behind a higher seq.
  #rebuild(): void {
    this.#behind.clear();
    let highest = -1;
    for (const message of this.messages.values()) {
      if (message.seq > highest) highest = message.seq;
      else if (message.state !== 'in-flight') this.#behind.push(message.seq);
    }
    this.#highest = Math.max(this.#highest, highest);
  }
}
