// Publisher confirms of one channel (confirm.select): which delivery tags
// wait for the disk, and the basic.ack / basic.nack that answer them.
//
// Tags are handed out in order and mostly settle in order, so their states
// live in a ring of small integers indexed by tag, from the oldest tag not
// yet answered: no Map entry made and deleted for every publish. A tag
// routed to several queues waits for each of them.
//
//   state > 0   waiting for that many queues
//   ACKED       stored everywhere: answered by the next `multiple` ack
//   NACKED      refused: its basic.nack went out at once

const ACKED = 0;
const NACKED = -1;
const INITIAL_CAPACITY = 1024;

/** What the tracker sends; the channel's own send. */
export type ConfirmSend = (
  method:
    | { name: 'basic.ack'; deliveryTag: number; multiple: boolean }
    | { name: 'basic.nack'; deliveryTag: number; multiple: boolean; requeue: boolean },
) => void;

export class ConfirmTracker {
  /** The last tag handed out. */
  #lastTag = 0;
  /** Every tag up to here is answered. */
  #answeredUpTo = 0;
  /** States of tags #answeredUpTo + 1 ..= #lastTag, from #head, wrapping. */
  #states = new Int32Array(INITIAL_CAPACITY);
  #head = 0;

  constructor(private readonly send: ConfirmSend) {}

  /** A new tag, waiting for one queue until told otherwise (waitFor). */
  open(): number {
    const tag = ++this.#lastTag;
    const index = tag - this.#answeredUpTo - 1;
    if (index >= this.#states.length) this.#grow();
    this.#states[(this.#head + index) % this.#states.length] = 1;
    return tag;
  }

  /** `tag` is confirmed once `queues` (one or more) have stored it. */
  waitFor(tag: number, queues: number): void {
    const at = this.#slot(tag);
    if (at >= 0 && this.#states[at] > 0) this.#states[at] = queues;
  }

  /**
   * Settles `tag` for one of its queues. A nack goes out at once, after
   * the acks before it; acks wait for sendAcks(), so a batch of publishes
   * landing together is answered with one `multiple` ack.
   */
  settle(tag: number, ok: boolean): void {
    const at = this.#slot(tag);
    if (at < 0) return;
    const state = this.#states[at];
    if (state <= ACKED) return;
    if (!ok) {
      this.sendAcks();
      // sendAcks stops at the first waiting tag, so this one stays put.
      this.#states[at] = NACKED;
      this.send({ name: 'basic.nack', deliveryTag: tag, multiple: false, requeue: false });
    } else {
      this.#states[at] = state === 1 ? ACKED : state - 1;
    }
  }

  /**
   * One ack up to the highest tag below which every tag is answered:
   * `multiple` when it answers more than one. A single one goes out with
   * multiple=false, as RabbitMQ sends it: Bunny 2.19 adds its tag offset
   * twice to a `multiple` ack after a reconnection, and its publisher
   * waited for confirms for ever (new user).
   */
  sendAcks(): void {
    let lastAck = 0;
    let acked = 0;
    const states = this.#states;
    while (this.#answeredUpTo < this.#lastTag) {
      const state = states[this.#head];
      if (state > 0) break;
      this.#answeredUpTo++;
      if (state === ACKED) {
        lastAck = this.#answeredUpTo;
        acked++;
      }
      this.#head = (this.#head + 1) % states.length;
    }
    if (lastAck > 0) this.send({ name: 'basic.ack', deliveryTag: lastAck, multiple: acked > 1 });
  }

  /** Index in #states of a tag that is out and not yet answered; -1 if none. */
  #slot(tag: number): number {
    if (tag <= this.#answeredUpTo || tag > this.#lastTag) return -1;
    return (this.#head + tag - this.#answeredUpTo - 1) % this.#states.length;
  }

  // Doubles the ring, unwrapping it so the oldest tag is at 0 again.
  #grow(): void {
    const old = this.#states;
    const grown = new Int32Array(old.length * 2);
    grown.set(old.subarray(this.#head));
    grown.set(old.subarray(0, this.#head), old.length - this.#head);
    this.#states = grown;
    this.#head = 0;
  }
}
