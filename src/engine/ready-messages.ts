// A best-effort queue's ready messages in memory, highest priority first,
// then oldest (lowest seq) first: one SortedItems a priority. Most arrive
// in seq order within their priority (publishes, pages read back from the
// cold tier) and sit in its run; the rest (a nack's requeue, a delay that
// ended, a page older than messages in memory) in its heap. One heap for
// all of them cost a consumer of a 50,000-message backlog 16 levels of
// moves a delivery: a quarter of the broker's time (bench/amqp-compare.ts,
// issue #4).
//
// A message's slots.heap says where it is in its priority's items (see
// sorted-items.ts), so that it can leave from the middle at once (detach).

import { SortedItems } from './sorted-items.js';
import { MAX_PRIORITY, type Message, type Slots } from './types.js';

const bySeq = (a: Message, b: Message) => a.seq < b.seq;

const place = (message: Message, slot: number) => {
  (message.slots as Slots).heap = slot;
};

export class ReadyMessages {
  private readonly byPriority: SortedItems<Message>[] =
    Array.from({ length: MAX_PRIORITY + 1 }, () => new SortedItems<Message>(bySeq, place));

  /** The next message to deliver, left in place. */
  peek(): Message | undefined {
    return this.highest()?.peek();
  }

  /** Up to `max` of the first ready messages of `priority`, in order, left in place. */
  first(priority: number, max: number): Message[] {
    return this.byPriority[priority].first(max);
  }

  /** The ready message that came first (lowest seq), whatever its priority. */
  oldest(): Message | undefined {
    let oldest: Message | undefined;
    for (const items of this.byPriority) {
      const head = items.peek();
      if (head !== undefined && (oldest === undefined || head.seq < oldest.seq)) oldest = head;
    }
    return oldest;
  }

  push(message: Message): void {
    this.byPriority[message.priority].push(message);
  }

  pop(): Message | undefined {
    return this.highest()?.pop();
  }

  /** Takes `message` out if it is where `slot` (its slots.heap) says. */
  remove(message: Message, slot: number): boolean {
    return this.byPriority[message.priority].remove(message, slot);
  }

  // The items of the highest priority that holds any message.
  private highest(): SortedItems<Message> | undefined {
    for (let priority = MAX_PRIORITY; priority >= 0; priority--) {
      const items = this.byPriority[priority];
      if (items.size > 0) return items;
    }
    return undefined;
  }
}
