// A FIFO queue's message groups (README, "Semantics in brief"): each group
// delivers in seq order; one receive may lease several consecutive heads
// of a group, after which the group delivers nothing while any of them is
// in flight or its head waits for a retry or delay; ready groups take
// turns in a ring.
//
// A group's waiting messages are split as a best-effort queue's are
// (cold-tier.ts): a few in memory as objects (`waiting`, a heap by seq)
// and the rest cold, as seqs in a deque (`cold`, typed arrays) with their
// scheduling fields in the queue's ColdRows. The group's next message is
// whichever of the two heads has the lower seq; the engine pages cold
// heads in when they come first (queue.ts, headOf).

import { ColdDeque } from './cold-backlog.js';
import { Heap } from './heap.js';
import type { Message, Slots } from './types.js';

export class Group {
  readonly waiting = new Heap<Message>(bySeq, placeMessage);
  readonly cold = new ColdDeque();
  inFlight = 0;
  inRing = false;

  constructor(readonly key: string, readonly id: number) {}

  /** Nothing waits in the group, in memory or cold. */
  get empty(): boolean {
    return this.waiting.size === 0 && this.cold.count === 0;
  }
}

const bySeq = (a: Message, b: Message) => a.seq < b.seq;
const placeMessage = (message: Message, index: number) => {
  (message.slots as Slots).heap = index;
};
const DEFAULT_GROUP = '';

export class FifoGroups {
  readonly #byKey = new Map<string, Group>();
  // Cold rows name their group by a number (a u32 column), not a string.
  readonly #byId = new Map<number, Group>();
  #nextId = 1;
  readonly #ring: Group[] = [];
  #ringHead = 0;

  /** The group of `key` (null: the default group), made if new. */
  of(key: string | null): Group {
    const name = key ?? DEFAULT_GROUP;
    let group = this.#byKey.get(name);
    if (group === undefined) {
      group = new Group(name, this.#nextId++);
      this.#byKey.set(name, group);
      this.#byId.set(group.id, group);
    }
    return group;
  }

  byId(id: number): Group | undefined {
    return this.#byId.get(id);
  }

  /** Forgets a group with nothing waiting nor in flight. */
  dropIfIdle(group: Group): void {
    if (group.inFlight > 0 || !group.empty) return;
    this.#byKey.delete(group.key);
    this.#byId.delete(group.id);
  }

  /** Puts a group that may deliver in the ring, once. */
  offer(group: Group): void {
    if (group.inRing || group.inFlight > 0) return;
    group.inRing = true;
    this.#ring.push(group);
  }

  /** The next group in the ring, taken out of it; undefined at the end. */
  next(): Group | undefined {
    if (this.#ringHead >= this.#ring.length) return undefined;
    const group = this.#ring[this.#ringHead++];
    group.inRing = false;
    return group;
  }

  /** Lets go of the ring's spent front. */
  compact(): void {
    if (this.#ringHead > 0 && this.#ringHead * 2 >= this.#ring.length) {
      this.#ring.splice(0, this.#ringHead);
      this.#ringHead = 0;
    }
  }

  values(): IterableIterator<Group> {
    return this.#byKey.values();
  }
}
