// A best-effort queue's ready messages in memory, highest priority first,
// then oldest (lowest seq) first. Most arrive in that order within their
// priority (publishes, pages read back from the cold tier): those join a
// run per priority, a queue of their own, taken from the front at O(1).
// The rest (a nack's requeue, a delay that ended, a page older than
// messages in memory) go in a heap. One heap for all of them cost a
// consumer of a 50,000-message backlog 16 levels of moves a delivery:
// a quarter of the broker's time (bench/amqp-compare.ts, issue #4).
//
// A message's slots.heap says where it is, so that it can leave from the
// middle at once (detach): -1 nowhere, i >= 0 at index i of the heap,
// -2 - p at position p of its priority's run. A run's place left is
// emptied (null), and skipped when it comes to the front.

import { Heap } from './heap.js';
import { MAX_PRIORITY, type Message, type Slots } from './types.js';

const byPriorityThenSeq = (a: Message, b: Message) =>
  a.priority !== b.priority ? a.priority > b.priority : a.seq < b.seq;

const placeInHeap = (message: Message, index: number) => {
  (message.slots as Slots).heap = index;
};

/** A run's places taken from the front before they are let go of. */
const COMPACT_AT = 1024;

/** Messages of one priority in seq order; positions count from the run's start. */
class Run {
  /** items[i] is at position start + i; null once taken out. */
  private items: (Message | null)[] = [];
  private start = 0;
  private head = 0;
  count = 0;
  /** The highest seq pushed since the run was last empty. */
  lastSeq = -1;

  /** The first message, or undefined when none. */
  peek(): Message | undefined {
    return this.count === 0 ? undefined : (this.items[this.head] as Message);
  }

  push(message: Message): void {
    (message.slots as Slots).heap = -2 - (this.start + this.items.length);
    this.items.push(message);
    this.count++;
    this.lastSeq = message.seq;
  }

  shift(): void {
    const message = this.items[this.head] as Message;
    (message.slots as Slots).heap = -1;
    this.items[this.head++] = null;
    this.count--;
    this.skipEmpty();
  }

  /** Takes out the message at `position`; false when it is not there. */
  remove(message: Message, position: number): boolean {
    const at = position - this.start;
    if (at < this.head || at >= this.items.length || this.items[at] !== message) return false;
    (message.slots as Slots).heap = -1;
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
      this.lastSeq = -1;
      return;
    }
    while (this.items[this.head] === null) this.head++;
    // Let go of the places taken, now and then, not at every shift.
    if (this.head >= COMPACT_AT && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.start += this.head;
      this.head = 0;
    }
  }
}

export class ReadyMessages {
  private readonly runs: Run[] = Array.from({ length: MAX_PRIORITY + 1 }, () => new Run());
  private readonly heap = new Heap<Message>(byPriorityThenSeq, placeInHeap);

  /** The next message to deliver, left in place. */
  peek(): Message | undefined {
    const run = this.bestRun();
    const top = this.heap.peek();
    const head = run?.peek();
    if (head === undefined) return top;
    return top !== undefined && byPriorityThenSeq(top, head) ? top : head;
  }

  push(message: Message): void {
    const run = this.runs[message.priority];
    if (message.seq > run.lastSeq) run.push(message);
    else this.heap.push(message);
  }

  pop(): Message | undefined {
    const run = this.bestRun();
    const top = this.heap.peek();
    const head = run?.peek();
    if (head === undefined || (top !== undefined && byPriorityThenSeq(top, head))) {
      return this.heap.pop();
    }
    (run as Run).shift();
    return head;
  }

  /** Takes `message` out if it is where `slot` (its slots.heap) says. */
  remove(message: Message, slot: number): boolean {
    if (slot >= 0) return this.heap.remove(message, slot);
    if (slot === -1) return false;
    return this.runs[message.priority].remove(message, -2 - slot);
  }

  // The run of the highest priority that holds any message.
  private bestRun(): Run | undefined {
    for (let priority = MAX_PRIORITY; priority >= 0; priority--) {
      const run = this.runs[priority];
      if (run.count > 0) return run;
    }
    return undefined;
  }
}
