// One queue's state and scheduling rules, as pure logic: no I/O, no timers,
// no wall clock. Every call takes `now`; the broker persists what the
// engine reports and arms a timer for `nextWakeAt()`.
//
// Best-effort queues deliver the highest priority first, then by arrival
// (seq). FIFO queues keep strict seq order within a message group: one
// receive may lease several consecutive messages of a group (as SQS FIFO
// does, and CASES.md C8 expects), after which the group delivers nothing
// while any of them is in flight or its head waits for a retry or delay;
// ready groups take turns (README, "Semantics in brief").

import { backoffDelay } from './backoff.js';
import type { ColdRow } from './cold-rows.js';
import {
  QueueContents,
  slotsOf,
  untime,
  type NackRequest,
  type Outcome,
} from './queue-contents.js';
import {
  hasLimits, planAdmission, trimsOldest, type LimitRefusal, type Newcomer,
} from './overflow.js';
import type { DeathReason, Delivery, Lease, Message } from './types.js';

export { HOT_READY_LIMIT, HOT_WAITING_BYTES, PAGE_IN_BATCH, type PageIn } from './cold-tier.js';
export type { EngineOptions, NackRequest, Outcome } from './queue-contents.js';

export class QueueEngine extends QueueContents {
  /** When bringColdHeadIn may run next; 0: as soon as a timer asks. */
  private coldHeadCheckAt = 0;

  // --- deduplication --------------------------------------------------

  /** True when `id` was published within the dedup window before `now`. */
  isDuplicate(id: string, now: number): boolean {
    return this.dedup.has(id, now, this.settings.dedupWindowMs);
  }

  /** Remembers a producer's id, the newest `dedupMaxIds` of them (dedup.ts). */
  rememberId(id: string, publishedAt: number): void {
    const { dedupWindowMs, dedupMaxIds } = this.settings;
    if (dedupWindowMs > 0) this.dedup.remember(id, publishedAt, dedupMaxIds);
  }

  /** Undoes rememberId for a publish that failed to reach the disk. */
  forgetId(id: string): void {
    this.dedup.forget(id);
  }

  // --- limits ---------------------------------------------------------

  /**
   * Decides which newcomers fit under maxLength and maxBytes, displacing
   * waiting messages (dead, reason `overflow`) as the policy says and
   * reserving room for the admitted until settleReservation(). With
   * `wholeBatch`, one refusal refuses the batch and nothing changes.
   * Returns one entry per newcomer: null when admitted.
   */
  admit(newcomers: Newcomer[], wholeBatch: boolean): (LimitRefusal | null)[] {
    const plan = planAdmission(
      this.current, this.waiting, this.reserved, newcomers, this.waitingOrder ?? undefined);
    const refusedCount = plan.refusals.filter((refusal) => refusal !== null).length;
    this.totals.refused += wholeBatch && refusedCount > 0 ? newcomers.length : refusedCount;
    const first = plan.refusals.find((refusal) => refusal !== null);
    if (wholeBatch && first !== undefined) return plan.refusals.map(() => first);

    for (const { seq } of plan.displaced) {
      const message = this.messages.get(seq) ?? this.takeColdIn(seq);
      if (message !== undefined) this.overflow(message);
    }
    this.reserved.count += plan.admittedCount;
    this.reserved.bytes += plan.admittedBytes;
    return plan.refusals;
  }

  /**
   * Whether admit() would admit any newcomers and displace nobody: the
   * queue has no limits, or trims its oldest (drop-oldest) on enqueue.
   */
  admitsAll(): boolean {
    return !hasLimits(this.current) || trimsOldest(this.current);
  }

  /** admit() for a queue that admitsAll(): reserves room for them all. */
  reserve(count: number, bytes: number): void {
    this.reserved.count += count;
    this.reserved.bytes += bytes;
  }

  /** Frees room reserved by admit(), once those publishes landed or failed. */
  settleReservation(count: number, bytes: number): void {
    this.reserved.count = Math.max(0, this.reserved.count - count);
    this.reserved.bytes = Math.max(0, this.reserved.bytes - bytes);
  }

  /**
   * drop-oldest: the oldest waiting messages leave until the queue fits.
   * TODO(#6): the broker logs these after the newcomer's record, so a crash
   * in between replays the queue one over its limit until the next publish.
   */
  protected trimOldest(): void {
    const { maxLength, maxBytes } = this.current;
    while (
      (maxLength !== null && this.waiting.count > maxLength) ||
      (maxBytes !== null && this.waiting.bytes > maxBytes)
    ) {
      const oldest = this.oldestWaiting();
      if (oldest === undefined) return;
      this.overflow(oldest);
    }
  }

  /**
   * The waiting message with the lowest seq, in memory or cold (then
   * taken in): the oldest by first arrival, whatever its priority, a
   * dead-lettered or redriven one keeping its first seq (README).
   */
  private oldestWaiting(): Message | undefined {
    const hot = this.oldestInMemory?.oldest();
    const cold = this.cold?.oldestSeq();
    if (cold === undefined || (hot !== undefined && hot.seq < cold)) return hot;

    // The oldest is cold: take it in, then let it go as a hot one would.
    return this.takeColdIn(cold) ?? this.oldestWaiting();
  }

  /** Takes a cold message into memory to let it go; undefined if unreadable. */
  private takeColdIn(seq: number): Message | undefined {
    const taken = this.takeCold(seq);
    if (taken === undefined) return undefined;
    this.enqueueHot(taken, taken.state === 'delayed', false);
    return taken;
  }

  private overflow(message: Message): void {
    this.totals.overflowed++;
    this.kill(message, 'overflow');
  }

  // --- delivering -----------------------------------------------------

  /** Leases up to `max` deliverable messages for `leaseMs`. */
  receive(now: number, max: number, leaseMs: number): Delivery[] {
    this.tickDelayed(now);
    const deliveries: Delivery[] = [];

    if (this.settings.fifo) this.receiveFromGroups(now, max, leaseMs, deliveries);
    else this.receiveByPriority(now, max, leaseMs, deliveries);
    return deliveries;
  }

  private receiveByPriority(
    now: number,
    max: number,
    leaseMs: number,
    out: Delivery[],
  ): void {
    while (out.length < max) {
      this.pageInAhead();
      const message = this.ready.pop();
      if (message === undefined) return;
      if (!this.isCurrent(message, 'ready')) continue;
      if (this.expireIfDue(message, now)) continue;
      out.push(this.lease(message, now, leaseMs));
    }
  }

  private receiveFromGroups(
    now: number,
    max: number,
    leaseMs: number,
    out: Delivery[],
  ): void {
    while (out.length < max) {
      const group = this.groups.next();
      if (group === undefined) break;
      if (group.inFlight > 0) continue;

      // A group hands out consecutive heads in order within one receive,
      // then stays blocked until all of them settle.
      while (out.length < max) {
        const head = this.headOf(group, max - out.length);
        if (head === undefined || head.state !== 'ready') break;
        group.waiting.pop();
        if (this.expireIfDue(head, now)) continue;
        group.inFlight++;
        out.push(this.lease(head, now, leaseMs));
      }
    }
    this.groups.compact();
  }

  private lease(message: Message, now: number, leaseMs: number): Delivery {
    const delivery = (this.deliveryCounter++).toString(36);
    const receipt = `${message.seq.toString(36)}.${this.receiptPrefix}${delivery}`;
    const deadline = now + leaseMs;

    this.waiting.remove(message);
    slotsOf(message).order = 0;
    message.state = 'in-flight';
    this.counts.ready--;
    this.counts.inFlight++;
    this.totals.delivered++;
    const lease = new LeaseEntry(message, receipt, message.failures + 1, deadline);
    message.lease = lease;
    this.leaseDeadlines.push(lease);
    return lease;
  }

  /**
   * The message a receipt currently leases, found by the seq the receipt
   * starts with; undefined for a receipt that is malformed, settled, or
   * from an earlier delivery of the message (its delivery number differs).
   */
  private leaseOf(receipt: string): Message | undefined {
    const seq = seqOfReceipt(receipt);
    if (seq < 0) return undefined;
    const message = this.messages.get(seq);
    if (message === undefined || message.lease?.receipt !== receipt) return undefined;
    return message;
  }

  // --- settling -------------------------------------------------------

  /** Settles a lease; undefined when the receipt is not a current lease. */
  ack(receipt: string): Message | undefined {
    const message = this.leaseOf(receipt);
    if (message === undefined) return undefined;

    this.detach(message);
    this.totals.acked++;
    this.reopenGroupOf(message);
    return message;
  }

  /**
   * Ends a delivery as failed. Answers what became of the message, the
   * outcome takeOutcomes() then hands over for the broker to settle;
   * undefined for a receipt that is not a current lease.
   */
  nack(receipt: string, now: number, request: NackRequest): Outcome | undefined {
    const message = this.leaseOf(receipt);
    if (message === undefined) return undefined;

    this.totals.nacked++;
    return this.fail(message, now, request.requeue, request.delayMs);
  }

  /** Moves a lease's deadline to `now + timeoutMs`; undefined if not current. */
  extend(receipt: string, now: number, timeoutMs: number): number | undefined {
    const lease = this.leaseOf(receipt)?.lease;
    if (lease == null) return undefined;

    untime(this.leaseDeadlines, lease);
    lease.at = now + timeoutMs;
    this.leaseDeadlines.push(lease);
    return lease.at;
  }

  /**
   * Hands a lease back untouched: ready again at once, no attempt counted.
   * For deliveries that never reached the consumer (it hung up first).
   */
  release(receipt: string, now: number): boolean {
    const message = this.leaseOf(receipt);
    if (message === undefined) return false;

    this.releaseLease(message);
    message.availableAt = Math.min(message.availableAt, now);
    if (this.settings.fifo) this.groups.of(message.group).waiting.push(message);
    this.makeWaitingOrReady(message, message.availableAt > now);
    this.reopenGroupOf(message);
    return true;
  }

  private fail(
    message: Message,
    now: number,
    requeue: boolean,
    delayMs: number | undefined,
  ): Outcome {
    message.failures++;
    const { maxAttempts } = this.settings;

    let fate: 'retry' | DeathReason = 'retry';
    if (!requeue) fate = 'rejected';
    else if (maxAttempts > 0 && message.failures >= maxAttempts) fate = 'max-attempts';
    else if (message.expiresAt !== null && message.expiresAt <= now) fate = 'expired';

    let outcome: Outcome;
    if (fate !== 'retry') {
      outcome = this.kill(message, fate);
    } else {
      this.releaseLease(message);
      const delay =
        delayMs ?? backoffDelay(this.settings.backoff, message.failures, this.random);
      message.availableAt = now + delay;
      if (this.settings.fifo) this.groups.of(message.group).waiting.push(message);
      this.makeWaitingOrReady(message, message.availableAt > now);
      outcome = { kind: 'retry', message };
      this.outbox.push(outcome);
    }
    this.reopenGroupOf(message);
    return outcome;
  }

  /** Ends a lease whose message stays in the queue. */
  private releaseLease(message: Message): void {
    untime(this.leaseDeadlines, message.lease);
    message.lease = null;
    this.counts.inFlight--;
    if (this.settings.fifo) this.groups.of(message.group).inFlight--;
  }

  private kill(message: Message, reason: DeathReason): Outcome {
    this.detach(message);
    if (reason === 'expired') this.totals.expired++;
    const outcome: Outcome = { kind: 'dead', message, reason };
    this.outbox.push(outcome);
    return outcome;
  }

  // --- time -----------------------------------------------------------

  /** Releases due delays, redelivers expired leases, expires old messages. */
  tick(now: number, coldPages: ColdPageBudget = { left: COLD_HEAD_PAGES }): void {
    this.tickDelayed(now);

    for (let entry = this.leaseDeadlines.peek(); entry !== undefined && entry.at <= now;
      entry = this.leaseDeadlines.peek()) {
      this.leaseDeadlines.pop();
      const { message } = entry;
      if (!this.isCurrent(message, 'in-flight') || message.lease !== entry) continue;
      this.totals.leaseExpired++;
      this.fail(message, now, true, 0);
    }

    this.expireDue(now);
    if (now >= this.coldHeadCheckAt && this.coldHeadWaits()) this.bringColdHeadIn(now, coldPages);
  }

  private expireDue(now: number): void {
    for (let entry = this.expiries.peek(); entry !== undefined && entry.at <= now;
      entry = this.expiries.peek()) {
      this.expiries.pop();
      const { message } = entry;
      slotsOf(message).expiry = null;
      // An in-flight message is judged when its lease ends, not mid-lease.
      if (this.messages.get(message.seq) !== message) continue;
      if (message.state === 'in-flight') continue;
      this.kill(message, 'expired');
    }
  }

  /**
   * A message's TTL is timed once it is in memory (enqueueHot): the cold
   * tier keeps no expiry times. So that the head of a queue expires in
   * time with nobody reading it, as RabbitMQ's classic queues time their
   * head, the head is brought into memory at most every
   * COLD_HEAD_CHECK_MS, and while whole pages of it turn out expired the
   * next follows, as many as the run's share allows. Without it, messages
   * recovered at a restart (all cold) never expired until a consumer came
   * (breaker session): a retry queue of TTL and dead-lettering stalled.
   * FIFO queues keep their cold messages by group, and are not covered.
   */
  private bringColdHeadIn(now: number, coldPages: ColdPageBudget): void {
    // The first check waits a period too: a restart's replay is not paged
    // back in while the broker starts.
    const first = this.coldHeadCheckAt === 0;
    this.coldHeadCheckAt = now + COLD_HEAD_CHECK_MS;
    if (first) return;
    for (let pages = 0; this.coldHeadWaits(); pages++) {
      if (coldPages.left <= 0) {
        // The run's share is spent (Broker.runDue): the rest soon, after
        // the event loop has served others.
        this.coldHeadCheckAt = now + COLD_HEAD_SOON_MS;
        return;
      }
      coldPages.left--;
      const expiredBefore = this.totals.expired;
      // The first page only looks at the head: a few messages, none read
      // ahead. After a restart every queue with a backlog is looked at, and
      // whole pages read ahead for each took 250 MB for 100 queues of
      // 15 KB messages without a TTL (breaker session).
      if (pages === 0) this.pageInAhead(COLD_HEAD_PROBE, false);
      else this.pageInAhead();
      this.expireDue(now);
      if (this.totals.expired === expiredBefore) return;
    }
  }

  /** Whether the next message to deliver is cold (a best-effort queue's). */
  private coldHeadWaits(): boolean {
    const backlog = this.cold?.backlog;
    if (backlog === undefined || backlog.count === 0 || this.settings.fifo) return false;
    if (!this.coldMayExpire && this.settings.messageTtlMs === null) return false;
    const top = this.ready.peek();
    return backlog.ahead(top?.priority ?? -1, top?.seq ?? Number.POSITIVE_INFINITY) >= 0;
  }

  /**
   * Makes delayed messages due by `now` ready, in memory and cold, in one
   * order by (due time, seq): FIFO groups join the ring in that order
   * wherever their messages are.
   */
  private tickDelayed(now: number): void {
    const due = this.dueScratch;
    for (let entry = this.delayed.peek(); entry !== undefined && entry.at <= now;
      entry = this.delayed.peek()) {
      this.delayed.pop();
      const { message } = entry;
      slotsOf(message).delay = null;
      if (!this.isCurrent(message, 'delayed') || message.availableAt !== entry.at) continue;
      due.push(message);
    }
    const coldDue = this.cold?.releaseDue(now, this.current.fifo) ?? NO_ROWS;

    let hot = 0;
    let cold = 0;
    while (hot < due.length || cold < coldDue.length) {
      const row = coldDue[cold];
      const message = due[hot];
      if (message !== undefined && (row === undefined || message.availableAt < row.availableAt ||
        (message.availableAt === row.availableAt && message.seq < row.seq))) {
        hot++;
        message.state = 'ready';
        this.counts.delayed--;
        this.counts.ready++;
        if (this.settings.fifo) this.groups.offer(this.groups.of(message.group));
        else this.ready.push(message);
      } else {
        cold++;
        this.counts.delayed--;
        this.counts.ready++;
        const group = this.current.fifo ? this.groups.byId(row.group) : undefined;
        if (group !== undefined) this.groups.offer(group);
      }
    }
    due.length = 0;
  }

  /**
   * Waiting messages in delivery order (see waitingInOrder), delays due by
   * `now` released first so that they count as ready wherever they are.
   */
  inDeliveryOrder(now: number): Generator<Message> {
    this.tickDelayed(now);
    return this.waitingInOrder();
  }

  /** The earliest time at which tick() has work, or null. */
  nextWakeAt(): number | null {
    let earliest = this.cold?.rows.nextDue() ?? null;
    if (this.coldHeadWaits() && (earliest === null || this.coldHeadCheckAt < earliest)) {
      earliest = this.coldHeadCheckAt;
    }
    for (const heap of [this.delayed, this.leaseDeadlines, this.expiries]) {
      const top = heap.peek();
      if (top !== undefined && (earliest === null || top.at < earliest)) earliest = top.at;
    }
    return earliest;
  }

  hasOutcomes(): boolean {
    return this.outbox.length > 0;
  }

  /** Outcomes the broker must persist and act on, oldest first. */
  takeOutcomes(): Outcome[] {
    if (this.outbox.length === 0) return NO_OUTCOMES;
    const outcomes = this.outbox;
    this.outbox = [];
    return outcomes;
  }

  private expireIfDue(message: Message, now: number): boolean {
    if (message.expiresAt === null || message.expiresAt > now) return false;
    this.kill(message, 'expired');
    return true;
  }

  /** After a group's message settles, lets the group deliver again. */
  private reopenGroupOf(message: Message): void {
    if (!this.settings.fifo) return;
    const group = this.groups.of(message.group);
    if (group.inFlight > 0) return;
    if (this.headOf(group)?.state === 'ready') this.groups.offer(group);
  }
}

/** How often a cold head is brought in to meet its TTL (bringColdHeadIn). */
const COLD_HEAD_CHECK_MS = 1_000;
/** When the next pages come after a run's share of them was spent. */
const COLD_HEAD_SOON_MS = 20;
/** Messages of the first look at a cold head. */
const COLD_HEAD_PROBE = 16;
/** Pages brought in at one tick when the caller sets no budget. */
const COLD_HEAD_PAGES = 64;

/** Cold pages all queues may still bring in at this run (Broker.runDue). */
export interface ColdPageBudget {
  left: number;
}

const NO_OUTCOMES: Outcome[] = [];
const NO_ROWS: ColdRow[] = [];

/**
 * A lease, its entry in the lease-deadline heap, and the delivery
 * receive() hands out for it: one object a delivery, not three.
 */
class LeaseEntry implements Lease, Delivery {
  index = -1;

  constructor(
    readonly message: Message,
    readonly receipt: string,
    readonly attempt: number,
    public at: number,
  ) {}

  get leaseDeadline(): number {
    return this.at;
  }
}

/**
 * The seq a receipt (`<seq>.<delivery>`, both base 36) starts with, read
 * without making a string (acks come once a message): -1 when it has
 * none. Only a guess: leaseOf compares the whole receipt with the lease's.
 */
function seqOfReceipt(receipt: string): number {
  let seq = 0;
  for (let i = 0; i < receipt.length; i++) {
    const code = receipt.charCodeAt(i);
    if (code === DOT) return i > 0 ? seq : -1;
    const digit = base36Digit(code);
    if (digit < 0) return -1;
    seq = seq * 36 + digit;
  }
  return -1;
}

const DOT = 0x2e;

function base36Digit(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x61 && code <= 0x7a) return code - 0x61 + 10;
  return -1;
}
