// What one queue holds and where: its messages in memory (objects in heaps
// by state) and cold (on disk, known by rows of typed arrays, cold-tier.ts),
// with the counts, limits index and FIFO groups that go with them. Adding,
// taking and finding messages, and moving them between memory and disk,
// are here; the scheduling rules (delivering, settling, retries, time) are
// QueueEngine's, which extends this (queue.ts). Pure logic, no I/O.

import type { ColdDeque } from './cold-backlog.js';
import {
  type ColdCandidate, type ColdEntry, ColdTier, type ColdLeft, type PageIn,
  type ReadAhead,
} from './cold-tier.js';
import { DedupWindow } from './dedup.js';
import { listInOrder, waitingInOrder, type ListedQueue } from './delivery-order.js';
import { FifoGroups, type Group } from './fifo-groups.js';
import type { HotMemory } from './hot-memory.js';
import { purgeWaiting, restorePurged, type Purged } from './purged.js';
import { ReadyMessages } from './ready-messages.js';
import { TimedEntries } from './timed-entries.js';
import { OldestInMemory } from './oldest-in-memory.js';
import { WaitingIndex, needsPriorityIndex, trimsOldest } from './overflow.js';
import { WaitingOrder } from './waiting-order.js';
import {
  type DeathReason,
  type Message,
  type QueueSettings,
  type Slots,
  type TimedEntry,
} from './types.js';

/** What the cold tier takes of a message: a new publish's record has it all. */
export type ColdPublish = ColdCandidate &
  Pick<Message, 'availableAt' | 'body' | 'slots' | 'expiresAt'>;

/** What became of a message that left the in-flight or waiting state. */
export type Outcome =
  | { kind: 'retry'; message: Message }
  | { kind: 'dead'; message: Message; reason: DeathReason };

export interface NackRequest {
  requeue: boolean;
  delayMs?: number;
}

export interface EngineOptions {
  /** Uniform random in [0, 1), for backoff jitter; injectable for tests. */
  random?: () => number;
  /** What receipts start their delivery part with (in base 36, then a
   * dash); the broker passes its boot time so that a receipt from before
   * a restart never matches a lease after it. 0: nothing. */
  receiptBase?: number;
  /**
   * Reads messages back from the log by seq (undefined for one that cannot
   * be read). Given, a durable queue keeps only a window of its waiting
   * messages in memory and the rest cold (see cold-tier.ts); without it
   * every message stays in memory.
   */
  pageIn?: PageIn;
  /** Starts reading the next page of a cold backlog off the event loop. */
  readAhead?: ReadAhead;
  /** Waiting messages kept in memory before more go cold (HOT_READY_LIMIT)
   * unless `hotMemory` has room. */
  hotReadyLimit?: number;
  /** The broker's budget for waiting messages in memory, shared by its
   * queues; without it a queue keeps only its own window. */
  hotMemory?: HotMemory;
  /** Body bytes of waiting messages kept in memory before new ones go
   * cold (HOT_WAITING_BYTES). */
  hotWaitingBytes?: number;
}


export abstract class QueueContents {
  readonly name: string;
  protected current: QueueSettings;

  // In flight ones too: a receipt names its message's seq (leaseOf), so
  // no map from receipts is filled and emptied for every delivery.
  protected readonly messages = new Map<number, Message>();

  // Best-effort ready messages; FIFO queues use `groups` (fifo-groups.ts).
  protected readonly ready = new ReadyMessages();
  protected readonly groups = new FifoGroups();

  protected readonly delayed = new TimedEntries();
  protected readonly leaseDeadlines = new TimedEntries();
  protected readonly expiries = new TimedEntries();

  protected readonly dedup = new DedupWindow();

  protected readonly random: () => number;
  /** Deliveries so far, and what each receipt's delivery part starts with. */
  protected deliveryCounter = 0;
  protected readonly receiptPrefix: string;

  // Ready and delayed messages, for maxLength and maxBytes; `reserved` is
  // room promised to admitted publishes not yet durable.
  protected readonly waiting: WaitingIndex;
  protected readonly reserved = { count: 0, bytes: 0 };
  // When each waiting message became waiting, per priority: kept only for
  // the reject-lowest-priority policy, so other queues pay nothing for it.
  protected waitingOrder: WaitingOrder | null = null;
  // Which waiting message in memory is the oldest: kept only for the
  // drop-oldest policy, which displaces it.
  protected oldestInMemory: OldestInMemory | null = null;
  /**
   * Set while a restart puts the log's live messages back (restoring):
   * a drop-oldest queue then trims nothing, so it comes back as it was.
   * It may have held more than its limit (a limit lowered under its
   * messages, a move landing as it was lowered), and a restart trimmed
   * the ones put back through enqueue() and enqueueColdEntry() (moved,
   * delayed, retried) but not plain publishes (enqueueCold), writing
   * their dead letters as it started (breaker).
   */
  private restoringLog = false;

  /** Current contents. */
  readonly counts = { ready: 0, delayed: 0, inFlight: 0, bytes: 0 };
  /** Counters since start; the broker adds what only it sees. */
  readonly totals = {
    published: 0,
    delivered: 0,
    acked: 0,
    nacked: 0,
    leaseExpired: 0,
    deadLettered: 0,
    expired: 0,
    dropped: 0,
    duplicates: 0,
    /** Waiting messages displaced by the overflow policy. */
    overflowed: 0,
    /** Publishes refused by maxLength or maxBytes. */
    refused: 0,
  };

  protected outbox: Outcome[] = [];
  // Reused by tickDelayed, which runs at every receive.
  protected readonly dueScratch: Message[] = [];
  /**
   * Whether a cold message may have a TTL of its own: one went cold with
   * one, or came back at a restart, when its record is not read. A queue's
   * own messageTtlMs counts too (QueueEngine.coldHeadWaits).
   */
  protected coldMayExpire = false;

  // Waiting messages whose bodies stay on disk; null while this queue
  // keeps everything in memory (coldAllowed says when).
  protected cold: ColdTier | null = null;
  protected readonly options: EngineOptions;

  constructor(name: string, settings: QueueSettings, options: EngineOptions = {}) {
    this.waiting = new WaitingIndex(options.hotMemory);
    this.name = name;
    this.current = settings;
    if (needsPriorityIndex(settings)) this.waitingOrder = this.newWaitingOrder();
    if (trimsOldest(settings)) this.oldestInMemory = new OldestInMemory(this.messages);
    this.random = options.random ?? Math.random;
    // The boot time once, not in every receipt: a number that large was
    // spelled in base 36 by V8's slow path, 0.6-1 us a delivery (a small
    // counter after a fixed prefix takes ~0.13).
    const base = options.receiptBase ?? 0;
    this.receiptPrefix = base === 0 ? '' : `${base.toString(36)}-`;
    this.options = options;
    this.cold = this.newColdTier(settings);
  }

  protected newColdTier(settings: QueueSettings): ColdTier | null {
    const { pageIn, hotReadyLimit, hotWaitingBytes, readAhead, hotMemory } = this.options;
    if (pageIn === undefined || !this.coldAllowed(settings)) return null;
    return new ColdTier(pageIn, hotReadyLimit, hotWaitingBytes, needsPriorityIndex(settings),
      readAhead, hotMemory);
  }

  /**
   * Which queues may keep messages cold: those with a log to read them
   * back from. A memory queue's bodies exist nowhere else, and they are
   * most of its memory: a compact index beside them would save little.
   */
  protected coldAllowed(settings: QueueSettings): boolean {
    return settings.durability !== 'memory';
  }

  private newWaitingOrder(): WaitingOrder {
    return new WaitingOrder((seq, order) => {
      const message = this.messages.get(seq);
      if (message !== undefined) {
        const waits = message.state !== 'in-flight' && slotsOf(message).order === order;
        return waits ? message.body.length : -1;
      }
      const row = this.cold?.rows.get(seq);
      return row !== undefined && row.order === order ? row.bytes : -1;
    });
  }

  /** A wait number for a message that just became waiting; 0 when none is kept. */
  protected nextWaitNumber(priority: number, seq: number): number {
    const order = this.waitingOrder;
    return order === null ? 0 : order.push(priority, seq, this.waiting.countByPriority[priority]);
  }

  get settings(): QueueSettings {
    return this.current;
  }

  /** New settings; a change of overflow policy rebuilds what it needs. */
  set settings(next: QueueSettings) {
    const ordering = needsPriorityIndex(next);
    const rebuild = ordering !== needsPriorityIndex(this.current);
    // A queue that may no longer keep messages cold, or that starts to
    // order its waiting messages for reject-lowest-priority, takes them
    // all in first (one read each), then numbers them in memory order.
    // TODO(#3): number cold messages in place instead of taking them in.
    if (this.cold !== null && (!this.coldAllowed(next) || (rebuild && ordering))) {
      const seqs = this.cold.seqs(this.current.fifo);
      for (const seq of seqs) {
        const message = this.takeCold(seq);
        if (message !== undefined) this.enqueueHot(message, message.state === 'delayed');
      }
      // Made anew: its rows keep wait numbers or not, as the policy needs.
      const unreadable = this.cold.unreadable;
      this.cold = this.coldAllowed(next) ? this.newColdTier(next) : null;
      if (this.cold !== null) this.cold.unreadable = unreadable;
    }
    this.current = next;
    this.cold ??= this.newColdTier(next);
    if (!trimsOldest(next)) this.oldestInMemory = null;
    else this.oldestInMemory ??= new OldestInMemory(this.messages);
    if (!rebuild) return;
    this.waitingOrder = ordering ? this.newWaitingOrder() : null;
    for (const message of this.messages.values()) {
      const waits = message.state !== 'in-flight';
      slotsOf(message).order = waits ? this.nextWaitNumber(message.priority, message.seq) : 0;
    }
  }

  /** Messages in the queue, cold ones included. */
  get size(): number {
    return this.messages.size + this.coldCount;
  }

  /** Whether this queue may keep waiting messages on disk only. */
  get keepsAnyCold(): boolean {
    return this.cold !== null;
  }

  /** Waiting messages kept on disk only. */
  get coldCount(): number {
    return this.cold?.count ?? 0;
  }

  /** Cold messages that could not be read back; they return at restart. */
  get unreadable(): number {
    return this.cold?.unreadable ?? 0;
  }

  has(seq: number): boolean {
    return this.messages.has(seq) || (this.cold?.has(seq) ?? false);
  }

  /** A message in memory; cold ones are not (see find). */
  get(seq: number): Message | undefined {
    return this.messages.get(seq);
  }

  /** A message in memory, or a cold one read back as a copy that stays cold. */
  find(seq: number): Message | undefined {
    return this.messages.get(seq) ?? this.cold?.find(seq);
  }

  /**
   * Every message: those in memory in the order they came into memory,
   * then cold ones by seq, read back as copies a page at a time. Not in
   * delivery order (list() is): for scans that need every message.
   */
  *values(): Generator<Message> {
    yield* this.messages.values();
    if (this.cold !== null) yield* this.cold.values(this.current.fifo);
  }

  /** Waiting messages in delivery order, hot and cold (delivery-order.ts). */
  protected *waitingInOrder(): Generator<Message> {
    yield* waitingInOrder(this.listed());
  }

  /** `limit` messages from `offset` in delivery order (delivery-order.ts). */
  list(offset: number, limit: number): Message[] {
    return listInOrder(this.listed(), offset, limit);
  }

  private listed(): ListedQueue {
    const { messages, ready, delayed, leaseDeadlines, cold } = this;
    const fifo = this.current.fifo;
    return { fifo, messages, ready, delayed, leaseDeadlines, inFlight: this.counts.inFlight, cold };
  }

  /** Seqs of every message, cold ones included. */
  allSeqs(): number[] {
    const seqs = [...this.messages.keys()];
    for (const seq of this.cold?.seqs(this.current.fifo) ?? []) seqs.push(seq);
    return seqs;
  }

  // --- adding ---------------------------------------------------------

  /**
   * Adds a message that is already durable. It must be a fresh object.
   * `onDisk` says its latest `published` record has its state but for
   * attempts and due time (a new publish, a replayed one): only such a
   * message may go cold, since reading it back gives that record.
   */
  enqueue(message: Message, now: number, onDisk = false): void {
    message.loggedHeaders = onDisk ? message.headers : undefined;
    // Whatever queue it came from, it becomes waiting here anew.
    message.slots = undefined;
    const delayed = message.availableAt > now;
    if (onDisk && this.goesCold(message, delayed)) this.addCold(message, delayed);
    else this.enqueueHot(message, delayed);
    if (!this.restoringLog && trimsOldest(this.current)) this.trimOldest();
  }

  /** On while a restart puts the log's messages back: nothing is trimmed. */
  restoring(on: boolean): void {
    this.restoringLog = on;
  }

  /**
   * enqueue(message, now, true) for a new publish that stays on disk only,
   * from its record's fields alone; false, changing nothing, when it would
   * be kept in memory (the caller then enqueues it as a Message). Under a
   * growing backlog nearly every publish goes cold, and a Message made
   * only to be dropped was a tenth of the bytes allocated a publish.
   * With `windowWasFull` (windowFull() before it was written) it goes cold
   * as if it had landed then: the newest message, behind all that wait.
   */
  enqueueColdPublish(fields: ColdPublish, now: number, windowWasFull = false): boolean {
    const delayed = fields.availableAt > now;
    if (!windowWasFull && !this.goesCold(fields, delayed)) return false;
    this.addCold(fields, delayed);
    if (trimsOldest(this.current)) this.trimOldest();
    return true;
  }

  /** Whether a publish now goes cold whatever it is (see enqueueColdPublish). */
  windowFull(): boolean {
    const cold = this.cold;
    if (cold === null) return false;
    return cold.full(this.messages.size - this.counts.inFlight, this.waiting.bytes - cold.bytes);
  }

  /**
   * The record that makes `seq`'s state durable has landed: a `published`
   * copy with `headers` (a move, a nack that set headers), or with none a
   * `retried` record. A waiting message whose disk state is now its own
   * goes cold if the window is over full, so that a dead-letter queue
   * filled by moves or a retry storm stays bounded as publishes do.
   */
  landed(seq: number, headers?: Record<string, string>): void {
    const message = this.messages.get(seq);
    const cold = this.cold;
    if (message === undefined || message.state === 'in-flight' || cold === null) return;
    if (headers !== undefined) {
      if (message.headers !== headers) return;
      message.loggedHeaders = headers;
    } else if (message.loggedHeaders !== message.headers) {
      return;
    }
    const hotWaiting = this.messages.size - this.counts.inFlight - 1;
    const hotBytes = this.waiting.bytes - cold.bytes - message.body.length;
    if (!cold.full(hotWaiting, hotBytes)) return;

    // Its group was offered when it became ready; offering it again would
    // move the group in the ring.
    const delayed = message.state === 'delayed';
    this.detach(message);
    this.addCold(message, delayed, false);
  }

  /** Adds a replayed message straight to the cold backlog; false if it may not go there. */
  enqueueCold(priority: number, seq: number, bytes: number): boolean {
    if (this.cold === null || this.current.fifo) return false;
    if (!this.cold.backlog.accepts(priority, seq)) return false;
    // Its TTL, if any, is in its record, not read at a restart.
    this.coldMayExpire = true;
    this.cold.addPlain(priority, seq, bytes, this.nextWaitNumber(priority, seq));
    this.counts.ready++;
    this.counts.bytes += bytes;
    this.waiting.addCold(priority, bytes);
    return true;
  }

  /**
   * Adds a replayed message cold by its scheduling fields alone, its
   * `published` record its state but for them (broker/rebuild.ts): a
   * delayed, retried or FIFO one. Ready or delayed at `now` as its due
   * time says; its FIFO group is offered as enqueue() would, so groups
   * take turns in the order they would have without the restart. False
   * when this queue keeps nothing cold.
   */
  enqueueColdEntry(fields: Omit<ColdEntry, 'order'>, group: string | null, now: number): boolean {
    const cold = this.cold;
    if (cold === null) return false;
    this.coldMayExpire = true;
    const delayed = fields.availableAt > now;
    const entry: ColdEntry = {
      seq: fields.seq,
      priority: fields.priority,
      bytes: fields.bytes,
      failures: fields.failures,
      availableAt: fields.availableAt,
      order: this.nextWaitNumber(fields.priority, fields.seq),
    };
    let fifoGroup: Group | undefined;
    if (this.current.fifo) {
      fifoGroup = this.groups.of(group);
      cold.addEntry(entry, delayed, fifoGroup.cold, fifoGroup.id);
    } else {
      cold.addEntry(entry, delayed);
    }
    this.countCold(entry.priority, entry.bytes, delayed, fifoGroup, true);
    if (!this.restoringLog && trimsOldest(this.current)) this.trimOldest();
    return true;
  }

  /** Whether a message whose disk state is its own stays cold. */
  protected goesCold(message: ColdCandidate, delayed: boolean): boolean {
    const cold = this.cold;
    if (cold === null) return false;
    const hotWaiting = this.messages.size - this.counts.inFlight;
    const hotBytes = this.waiting.bytes - cold.bytes;
    if (cold.full(hotWaiting, hotBytes)) return true;
    if (this.current.fifo) {
      // Once a group has a cold tail, newer messages join it, so the
      // window holds the heads of groups rather than their tails.
      const tail = this.groups.of(message.group).cold.peekLast();
      return tail !== undefined && message.seq > tail;
    }
    return !delayed && cold.keepsPlain(message, hotWaiting, hotBytes);
  }

  protected addCold(message: ColdPublish, delayed: boolean, offer = true): void {
    const cold = this.cold as ColdTier;
    if (message.expiresAt !== null) this.coldMayExpire = true;
    // A message that waited in memory keeps its number (landed()).
    let order = message.slots?.order ?? 0;
    if (order === 0) order = this.nextWaitNumber(message.priority, message.seq);
    let group: Group | undefined;
    if (this.current.fifo) {
      group = this.groups.of(message.group);
      cold.add(message, delayed, group.cold, group.id, order);
    } else {
      cold.add(message, delayed, undefined, 0, order);
    }
    this.countCold(message.priority, message.body.length, delayed, group, offer);
  }

  private countCold(
    priority: number,
    bytes: number,
    delayed: boolean,
    group: Group | undefined,
    offer: boolean,
  ): void {
    this.counts.bytes += bytes;
    this.waiting.addCold(priority, bytes);
    if (delayed) {
      this.counts.delayed++;
      return;
    }
    this.counts.ready++;
    if (group !== undefined && offer) this.groups.offer(group);
  }

  /** Counts a message that left the cold tier as gone. */
  protected forgetCold(left: ColdLeft): void {
    if (left.delayed) this.counts.delayed--;
    else this.counts.ready--;
    this.counts.bytes -= left.bytes;
    this.waiting.removeCold(left.priority, left.bytes);
  }

  protected enqueueHot(message: Message, delayed: boolean, offer = true): void {
    message.lease = null;
    // A cold message read back keeps the number it waits with (cold-tier.ts).
    const order = message.slots?.order ?? 0;
    message.slots = { heap: -1, delay: null, expiry: null, order, charge: 0 };
    this.messages.set(message.seq, message);
    this.counts.bytes += message.body.length;

    if (message.expiresAt !== null) {
      message.slots.expiry = timed(this.expiries, message.expiresAt, message);
    }
    if (this.settings.fifo) this.groups.of(message.group).waiting.push(message);
    this.makeWaitingOrReady(message, delayed, offer);
  }

  /** Moves a page of the oldest cold messages of `priority` into memory. */
  protected pageIn(priority: number, max?: number, readAhead?: boolean): void {
    const { messages, left } = (this.cold as ColdTier).takePage(priority, max, readAhead);
    for (const entry of left) this.forgetCold(entry);
    for (const message of messages) this.enqueueHot(message, false);
  }

  /**
   * Pages cold messages in until the hot heap's top is the next to
   * deliver, `max` a page (PAGE_IN_BATCH), reading the next ones ahead
   * unless told not to.
   */
  protected pageInAhead(max?: number, readAhead?: boolean): void {
    const backlog = this.cold?.backlog;
    if (backlog === undefined || backlog.count === 0) return;
    for (;;) {
      const top = this.ready.peek();
      const priority = backlog.ahead(top?.priority ?? -1, top?.seq ?? Number.POSITIVE_INFINITY);
      if (priority < 0) return;
      this.pageIn(priority, max, readAhead);
    }
  }

  /**
   * Moves up to `max` of a group's oldest cold messages into memory,
   * ready or delayed as they were. The group is being served or reopened
   * by the caller, so this offers it nowhere.
   */
  protected pageInGroup(group: Group, max: number): void {
    const { messages, left } = (this.cold as ColdTier).takeGroupPage(group.cold, max);
    for (const entry of left) this.forgetCold(entry);
    for (const message of messages) this.enqueueHot(message, message.state === 'delayed', false);
  }

  /** Takes a cold message out of the queue, read back (undefined if unreadable). */
  protected takeCold(seq: number): Message | undefined {
    const taken = this.cold?.takeOne(seq, this.current.fifo ? this.dequeOf : undefined);
    if (taken === undefined) return undefined;
    this.forgetCold(taken.left);
    return taken.message;
  }

  protected readonly dequeOf = (group: number): ColdDeque | undefined =>
    this.groups.byId(group)?.cold;

  protected makeWaitingOrReady(message: Message, delayed: boolean, offer = true): void {
    this.waiting.add(message);
    this.oldestInMemory?.waiting(message);
    const slots = slotsOf(message);
    if (slots.order === 0) slots.order = this.nextWaitNumber(message.priority, message.seq);
    if (delayed) {
      message.state = 'delayed';
      this.counts.delayed++;
      slotsOf(message).delay = timed(this.delayed, message.availableAt, message);
      return;
    }
    message.state = 'ready';
    this.counts.ready++;
    if (!this.settings.fifo) this.ready.push(message);
    else if (offer) this.groups.offer(this.groups.of(message.group));
  }

  // --- removing -------------------------------------------------------

  /** Removes every message not in flight; what it took (purged.ts). */
  purge(): Purged {
    const { current, messages, groups, cold, dequeOf } = this;
    return purgeWaiting({
      fifo: current.fifo, messages, groups, cold, dequeOf,
      forgetCold: (left) => this.forgetCold(left),
      detach: (message) => this.detach(message),
    });
  }

  /** Puts back what purge() took, its `settled` records having failed (purged.ts). */
  restorePurged(purged: Purged, now: number): void {
    restorePurged(this, purged, now);
  }

  /** The highest seq of a message a consumer holds (0: none); one pass over the messages. */
  highestLeasedSeq(): number {
    let highest = 0;
    for (const message of this.messages.values()) {
      if (message.lease !== null && message.seq > highest) highest = message.seq;
    }
    return highest;
  }

  /** The queue was deleted: what its messages held leaves the broker's budget. */
  releaseHotMemory(): void {
    this.waiting.release();
  }

  /**
   * Takes a cold message out without reading it back: its frame in the
   * log is damaged (storage/scrub.ts), so its body is gone. Counted as
   * dropped. false if it is not cold here (settled or read back already).
   */
  dropDamaged(seq: number): boolean {
    const left = this.cold?.remove(seq, this.current.fifo ? this.dequeOf : undefined);
    if (left === undefined) return false;
    this.forgetCold(left);
    this.totals.dropped++;
    return true;
  }

  /** Takes a message out (for a move to another queue); undefined if in flight. */
  take(seq: number): Message | undefined {
    if (this.cold?.has(seq)) return this.takeCold(seq);
    const message = this.messages.get(seq);
    if (message === undefined || message.state === 'in-flight') return undefined;
    this.detach(message);
    return message;
  }

  protected detach(message: Message): void {
    this.messages.delete(message.seq);
    this.counts.bytes -= message.body.length;

    // Out of every heap now, so nothing keeps the body alive.
    const slots = slotsOf(message);
    if (this.settings.fifo) {
      if (slots.heap >= 0) this.groups.of(message.group).waiting.remove(message, slots.heap);
    } else {
      this.ready.remove(message, slots.heap);
    }
    untime(this.delayed, slots.delay);
    untime(this.expiries, slots.expiry);
    untime(this.leaseDeadlines, message.lease);
    slots.delay = slots.expiry = null;

    if (message.state !== 'in-flight') this.waiting.remove(message);
    if (message.state === 'ready') this.counts.ready--;
    else if (message.state === 'delayed') this.counts.delayed--;
    else {
      this.counts.inFlight--;
      if (this.settings.fifo) this.groups.of(message.group).inFlight--;
    }
    message.lease = null;
  }

  protected isCurrent(message: Message, state: Message['state']): boolean {
    return message.state === state && this.messages.get(message.seq) === message;
  }

  // --- FIFO groups ----------------------------------------------------

  /**
   * The group's first live waiting message, dropping stale entries and
   * paging in up to `want` cold ones when they come first.
   */
  protected headOf(group: Group, want = 1): Message | undefined {
    for (;;) {
      let head = group.waiting.peek();
      while (head !== undefined &&
        (this.messages.get(head.seq) !== head || head.state === 'in-flight')) {
        group.waiting.pop();
        head = group.waiting.peek();
      }
      const coldHead = group.cold.peek();
      if (coldHead !== undefined && (head === undefined || coldHead < head.seq)) {
        this.pageInGroup(group, want);
        continue;
      }
      if (head === undefined) this.groups.dropIfIdle(group);
      return head;
    }
  }

  // --- reading --------------------------------------------------------

  /**
   * Age of the oldest ready message (by publish time), 0 when none. A
   * best-effort queue asks its ready index: the first ready message in
   * memory's order was not the oldest once a message came back
   * (redriven, moved in, requeued), and a scan stopped by 10,000 in
   * flight said 0 with messages waiting.
   */
  oldestReadyAgeMs(now: number): number {
    const hot = this.current.fifo ? this.firstReadyScanned() : this.ready.oldest();
    const cold = this.cold?.oldest(now, this.current.fifo);
    if (cold !== undefined && (hot === undefined || cold.seq < hot.seq)) {
      return Math.max(0, now - cold.publishedAt);
    }
    return hot === undefined ? 0 : Math.max(0, now - hot.publishedAt);
  }
  // TODO(#3): a FIFO queue's oldest ready message, indexed instead of
  // scanned (its ready messages are in its groups, fifo-groups.ts).
  private firstReadyScanned(): Message | undefined {
    let scanned = 0;
    for (const message of this.messages.values()) {
      if (message.state === 'ready') return message;
      if (++scanned > 10_000) return undefined;
    }
    return undefined;
  }

  /** drop-oldest: trims the queue after an enqueue (QueueEngine). */
  protected abstract trimOldest(): void;
}

export function slotsOf(message: Message): Slots {
  return message.slots as Slots;
}

export function timed(entries: TimedEntries, at: number, message: Message): TimedEntry {
  const entry = { at, message, index: -1 };
  entries.push(entry);
  return entry;
}

export function untime(entries: TimedEntries, entry: TimedEntry | null): void {
  if (entry !== null) entries.remove(entry);
}
