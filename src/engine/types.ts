// The shapes the queue engine works with. Times are epoch milliseconds taken
// from a clock the caller passes in, so the engine never reads the wall
// clock itself and tests never sleep.

export interface BackoffSettings {
  /** Delay before the first retry. */
  initialMs: number;
  /** Each later retry waits this many times longer than the one before. */
  multiplier: number;
  /** No retry waits longer than this. */
  maxMs: number;
  /** Fraction (0 to 1) of the delay randomised away, to spread retry storms. */
  jitter: number;
}

export interface QueueSettings {
  /** Strict order within a message group instead of priority order. */
  fifo: boolean;
  /** Deliveries allowed before a message is dead-lettered; 0 = unlimited. */
  maxAttempts: number;
  backoff: BackoffSettings;
  /** How long a receive leases a message before it is redelivered. */
  visibilityTimeoutMs: number;
  /** Where failed and expired messages go; null drops them (counted). */
  deadLetter: string | null;
  /** Default time to live of a message in this queue; null = forever. */
  messageTtlMs: number | null;
  /** A message id seen again within this window is stored once. */
  dedupWindowMs: number;
  /**
   * Most ids the dedup window remembers (the newest), so that memory stays
   * bounded whatever the publish rate: past it an id is forgotten before
   * its window ends, and a producer that reuses an id more than this many
   * messages later is not deduplicated. From 1 to MAX_DEDUP_IDS.
   */
  dedupMaxIds: number;
  /**
   * When a publish is confirmed: `fsync` once on disk, `os` once written
   * to the OS, `memory` at once, the queue and its messages never logged.
   */
  durability: Durability;
  /** Most messages waiting (ready or delayed; in flight ones do not
   * count, as in RabbitMQ); null = no limit. */
  maxLength: number | null;
  /** Most body bytes waiting; null = no limit. */
  maxBytes: number | null;
  /** What a publish past maxLength or maxBytes does. */
  overflow: OverflowPolicy;
  /** Refused first when the broker is under pressure (admission control). */
  sheddable: boolean;
}

export type Durability = 'fsync' | 'os' | 'memory';

/**
 * - reject-publish: the newcomer is refused (HTTP 429, AMQP basic.nack).
 * - reject-publish-dlx: refused the same way, and the broker dead-letters
 *   the refused newcomer (reason `overflow`), as RabbitMQ's policy of that
 *   name does. To the engine it is reject-publish.
 * - drop-oldest: the oldest waiting message (the lowest seq, whatever its
 *   priority: a dead-lettered or redriven one keeps its first) leaves to
 *   the dead-letter queue with reason `overflow`, or is dropped (counted)
 *   when there is none.
 * - reject-lowest-priority: a newcomer of higher priority displaces the
 *   lowest-priority waiting message (the oldest of them) the same way; one
 *   of equal or lower priority is refused.
 */
export type OverflowPolicy =
  | 'reject-publish'
  | 'reject-publish-dlx'
  | 'drop-oldest'
  | 'reject-lowest-priority';

export const OVERFLOW_POLICIES: readonly OverflowPolicy[] = [
  'reject-publish',
  'reject-publish-dlx',
  'drop-oldest',
  'reject-lowest-priority',
];

export const DEFAULT_SETTINGS: QueueSettings = {
  fifo: false,
  maxAttempts: 10,
  backoff: { initialMs: 1_000, multiplier: 2, maxMs: 60_000, jitter: 0.1 },
  visibilityTimeoutMs: 30_000,
  deadLetter: null,
  messageTtlMs: null,
  dedupWindowMs: 5 * 60_000,
  dedupMaxIds: 100_000,
  durability: 'fsync',
  maxLength: null,
  maxBytes: null,
  overflow: 'reject-publish',
  sheddable: false,
};

export const MIN_PRIORITY = 0;
export const MAX_PRIORITY = 9;

/** Why a message left its queue for the dead-letter queue. */
export const DEATH_REASONS = ['rejected', 'max-attempts', 'expired', 'overflow'] as const;
export type DeathReason = (typeof DEATH_REASONS)[number];

export type MessageState = 'ready' | 'delayed' | 'in-flight';

export interface Message {
  /** Store-wide sequence number; the message's identity in the log. */
  readonly seq: number;
  /** The producer's id (or a generated one); used for deduplication. */
  readonly id: string;
  priority: number;
  /** FIFO message group; null puts it in the queue's default group. */
  readonly group: string | null;
  headers: Record<string, string>;
  readonly body: Buffer;
  readonly publishedAt: number;
  /** Not deliverable before this time (delay or retry backoff). */
  availableAt: number;
  /** Dead-lettered as expired after this time; null = never. */
  expiresAt: number | null;
  /** Deliveries that ended without an ack. */
  failures: number;
  state: MessageState;
  /** Set while in flight; also its entry in the lease-deadline heap. */
  lease: Lease | null;
  /** Engine bookkeeping: where the message sits in its heaps. */
  slots?: Slots;
  /**
   * Engine bookkeeping: the headers of this message's latest `published`
   * record on disk, when that record is its state but for attempts and
   * due time (cold-tier.ts). Then the message may be let go of in memory
   * and read back; a move, or a nack that changed headers, clears it
   * until its new record has landed (QueueEngine.landed).
   */
  loggedHeaders?: Record<string, string>;
}

/** A message's place in the engine's heaps, so it can leave them at once. */
export interface Slots {
  /** Index in the ready heap (or its FIFO group's heap); -1 when in none. */
  heap: number;
  delay: TimedEntry | null;
  expiry: TimedEntry | null;
  /** When it became waiting, in a reject-lowest-priority queue
   * (waiting-order.ts); 0 when none or not waiting. */
  order: number;
  /** What the broker's budget for messages in memory was charged for it
   * while it waits (hot-memory.ts); 0 when not waiting. */
  charge: number;
}

export interface TimedEntry {
  at: number;
  message: Message;
  index: number;
}

/**
 * A delivery in flight: its entry in the lease-deadline heap (`at` is
 * the deadline) is the lease itself, one object a delivery rather than two.
 */
export interface Lease extends TimedEntry {
  readonly receipt: string;
}

/** One message handed to a consumer (the engine hands out its lease). */
export interface Delivery {
  readonly message: Message;
  readonly receipt: string;
  /** 1 on the first delivery. */
  readonly attempt: number;
  /** The lease's deadline now: an extend moves it. */
  readonly leaseDeadline: number;
}
