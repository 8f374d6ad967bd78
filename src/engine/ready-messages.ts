// A best-effort queue's ready messages in memory, highest priority first,
// then oldest (lowest seq) first. Most arrive in that order within their
// priority (publishes, pages read back from the cold tier): those join a
// run per priority (run.ts), taken from the front at O(1). The rest (a
// nack's requeue, a delay that ended, a page older than messages in
// memory) go in a heap. One heap for all of them cost a consumer of a
// 50,000-message backlog 16 levels of moves a delivery: a quarter of the
// broker's time (bench/amqp-compare.ts, issue #4).
//
// A message's slots.heap says where it is, so that it can leave from the
// middle at once (detach): -1 nowhere, i >= 0 at index i of the heap,
// <= -2 in its priority's run.

import { Heap } from './heap.js';
import { Run } from './run.js';
import { MAX_PRIORITY, type Message, type Slots } from './types.js';

const byPriorityThenSeq = (a: Message, b: Message) =>
  a.priority !== b.priority ? a.priority > b.priority : a.seq < b.seq;

const place = (message: Message, slot: number) => {
  (message.slots as Slots).heap = slot;
};

export class ReadyMessages {
  private readonly runs: Run<Message>[] =
    Array.from({ length: MAX_PRIORITY + 1 }, () => new Run<Message>(place));
  /** Per priority, the highest seq its run took since it was last empty. */
  private readonly lastSeqs: number[] = new Array<number>(MAX_PRIORITY + 1).fill(-1);
  private readonly heap = new Heap<Message>(byPriorityThenSeq, place);

  /** The next message to deliver, left in place. */
  peek(): Message | undefined {
    const head = this.bestRun()?.peek();
    const top = this.heap.peek();
    if (head === undefined) return top;
    return top !== undefined && byPriorityThenSeq(top, head) ? top : head;
  }

  push(message: Message): void {
    const run = this.runs[message.priority];
    if (run.count > 0 && message.seq <= this.lastSeqs[message.priority]) {
      this.heap.push(message);
      return;
    }
    run.push(message);
    this.lastSeqs[message.priority] = message.seq;
  }

  pop(): Message | undefined {
    const run = this.bestRun();
    const head = run?.peek();
    const top = this.heap.peek();
    if (head === undefined || (top !== undefined && byPriorityThenSeq(top, head))) {
      return this.heap.pop();
    }
    return (run as Run<Message>).shift();
  }

  /** Takes `message` out if it is where `slot` (its slots.heap) says. */
  remove(message: Message, slot: number): boolean {
    if (slot >= 0) return this.heap.remove(message, slot);
    if (slot === -1) return false;
    return this.runs[message.priority].remove(message, slot);
  }

  // The run of the highest priority that holds any message.
  private bestRun(): Run<Message> | undefined {
    for (let priority = MAX_PRIORITY; priority >= 0; priority--) {
      const run = this.runs[priority];
      if (run.count > 0) return run;
    }
    return undefined;
  }
}
