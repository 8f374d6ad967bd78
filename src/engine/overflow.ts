// Per-queue limits (maxLength, maxBytes) and what a publish past them does
// (README, "Graceful degradation"). Pure logic like the rest of the engine:
// the queue keeps a WaitingIndex of its waiting messages, and planAdmission
// decides, for a batch of newcomers, which are refused and which waiting
// messages they displace, without changing anything.
//
// Only waiting messages (ready or delayed) count against the limits, as in
// RabbitMQ: in-flight ones are bounded by the consumers' prefetch instead,
// and displacing a message a consumer is working on would waste the work.

import { HotMemory, hotCharge } from './hot-memory.js';
import { MAX_PRIORITY, type Message, type QueueSettings, type Slots } from './types.js';
import type { Victim } from './waiting-order.js';

/** Which limit a refused newcomer would have broken. */
export type LimitRefusal = 'max-length' | 'max-bytes';

export interface Newcomer {
  priority: number;
  bytes: number;
}

export interface AdmissionPlan {
  /** One per newcomer: null when admitted. */
  refusals: (LimitRefusal | null)[];
  /** Waiting messages that must leave to make room, in order. */
  displaced: Victim[];
  admittedCount: number;
  admittedBytes: number;
}

/**
 * Counts and bytes of waiting messages, per priority too. Those in memory
 * (add, remove) are charged to `hot` as well, the broker's budget.
 */
export class WaitingIndex {
  count = 0;
  bytes = 0;
  readonly countByPriority: number[] = new Array<number>(MAX_PRIORITY + 1).fill(0);
  readonly bytesByPriority: number[] = new Array<number>(MAX_PRIORITY + 1).fill(0);
  /** What this queue's waiting messages in memory are charged to `hot`. */
  private hotCharged = 0;

  constructor(private hot = new HotMemory(0)) {}

  /** A message in memory, its slots set: charged, and what it was charged kept there. */
  add(message: Message): void {
    this.addCold(message.priority, message.body.length);
    const charge = hotCharge(message);
    (message.slots as Slots).charge = charge;
    this.hotCharged += charge;
    this.hot.used += charge;
  }

  remove(message: Message): void {
    this.removeCold(message.priority, message.body.length);
    const slots = message.slots as Slots;
    this.hotCharged -= slots.charge;
    this.hot.used -= slots.charge;
    slots.charge = 0;
  }

  /** The queue is gone: its charge leaves the budget, and nothing more is charged. */
  release(): void {
    this.hot.used -= this.hotCharged;
    this.hotCharged = 0;
    this.hot = new HotMemory(0);
  }

  /** Counts a cold message (cold-backlog.ts), which has no object. */
  addCold(priority: number, bytes: number): void {
    this.count++;
    this.bytes += bytes;
    this.countByPriority[priority]++;
    this.bytesByPriority[priority] += bytes;
  }

  removeCold(priority: number, bytes: number): void {
    this.count--;
    this.bytes -= bytes;
    this.countByPriority[priority]--;
    this.bytesByPriority[priority] -= bytes;
  }
}

/** Where victims come from: a reject-lowest-priority queue's WaitingOrder. */
export interface VictimSource {
  /** Waiting messages of one priority, in the order they became waiting. */
  ofPriority(priority: number): Iterator<Victim>;
}

const NO_VICTIMS: VictimSource = { ofPriority: () => [][Symbol.iterator]() };

export function hasLimits(settings: QueueSettings): boolean {
  return settings.maxLength !== null || settings.maxBytes !== null;
}

/** Whether a queue displaces its oldest waiting message to make room (drop-oldest). */
export function trimsOldest(settings: QueueSettings): boolean {
  return hasLimits(settings) && settings.overflow === 'drop-oldest';
}

export function needsPriorityIndex(settings: QueueSettings): boolean {
  return hasLimits(settings) && settings.overflow === 'reject-lowest-priority';
}

/**
 * Decides who of `newcomers` fits. `reserved` is room already promised to
 * publishes still being written. Newcomers of one batch never displace
 * each other; drop-oldest admits everyone (the queue trims on enqueue).
 */
export function planAdmission(
  settings: QueueSettings,
  index: WaitingIndex,
  reserved: { count: number; bytes: number },
  newcomers: Newcomer[],
  source: VictimSource = NO_VICTIMS,
): AdmissionPlan {
  const plan: AdmissionPlan = {
    refusals: newcomers.map(() => null),
    displaced: [],
    admittedCount: 0,
    admittedBytes: 0,
  };
  const admitAll = !hasLimits(settings) || trimsOldest(settings);
  let count = index.count + reserved.count;
  let bytes = index.bytes + reserved.bytes;
  const victims = new VictimCursors(source);

  newcomers.forEach((newcomer, at) => {
    let afterCount = count + 1;
    let afterBytes = bytes + newcomer.bytes;
    const taken: Victim[] = [];

    if (!admitAll && settings.overflow === 'reject-lowest-priority') {
      // Lowest priorities first, the oldest of each first.
      for (let priority = 0; priority < newcomer.priority; priority++) {
        while (!fits(settings, afterCount, afterBytes)) {
          const victim = victims.next(priority);
          if (victim === undefined) break;
          taken.push(victim);
          afterCount--;
          afterBytes -= victim.bytes;
        }
      }
    }

    if (!admitAll && !fits(settings, afterCount, afterBytes)) {
      victims.giveBack(taken);
      plan.refusals[at] = settings.maxLength !== null && afterCount > settings.maxLength
        ? 'max-length'
        : 'max-bytes';
      return;
    }
    plan.displaced.push(...taken);
    plan.admittedCount++;
    plan.admittedBytes += newcomer.bytes;
    count = afterCount;
    bytes = afterBytes;
  });
  return plan;
}

function fits(settings: QueueSettings, count: number, bytes: number): boolean {
  return (settings.maxLength === null || count <= settings.maxLength) &&
    (settings.maxBytes === null || bytes <= settings.maxBytes);
}

/** Walks each priority's waiting messages once, with take-backs, so a plan
 * reads only as many messages as it displaces. */
interface Cursor {
  source: Iterator<Victim>;
  seen: Victim[];
  used: number;
}

class VictimCursors {
  private readonly cursors = new Map<number, Cursor>();

  constructor(private readonly source: VictimSource) {}

  next(priority: number): Victim | undefined {
    let cursor = this.cursors.get(priority);
    if (cursor === undefined) {
      cursor = { source: this.source.ofPriority(priority), seen: [], used: 0 };
      this.cursors.set(priority, cursor);
    }
    if (cursor.used === cursor.seen.length) {
      const step = cursor.source.next();
      if (step.done === true) return undefined;
      cursor.seen.push(step.value);
    }
    return cursor.seen[cursor.used++];
  }

  giveBack(victims: Victim[]): void {
    for (const victim of victims) {
      const cursor = this.cursors.get(victim.priority);
      if (cursor !== undefined) cursor.used--;
    }
  }
}
