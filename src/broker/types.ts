// The broker's face toward protocol adapters (HTTP now, AMQP later): every
// call names a queue, validates its input and throws UsherError subclasses
// from src/errors.ts on bad input.

import type { DeathReason, QueueSettings } from '../engine/types.js';
import type { LoadRefusalError, UsherError } from '../errors.js';
import type { LatencyHistogram } from '../observe/latency.js';
import type { AdmissionStats } from './admission.js';

/** Queue settings as a caller gives them: anything left out takes the default. */
export type QueueSettingsInput = Partial<
  Omit<QueueSettings, 'backoff'> & { backoff: Partial<QueueSettings['backoff']> }
>;

export interface QueueStats {
  /** Deliverable now. */
  ready: number;
  /** Leased to a consumer, waiting for ack or nack. */
  inFlight: number;
  /** Waiting for a delay or retry backoff to pass. */
  delayed: number;
  /** ready + inFlight + delayed. */
  total: number;
  /** Body bytes of every message in the queue. */
  bytes: number;
  published: number;
  delivered: number;
  acked: number;
  nacked: number;
  /** Leases that ran out without ack or nack. */
  leaseExpired: number;
  deadLettered: number;
  expired: number;
  /** Dead-lettered or expired with no dead-letter queue to take them. */
  dropped: number;
  duplicates: number;
  /** Waiting messages displaced by the overflow policy (dead-lettered,
   * reason `overflow`, or dropped when the queue has no dead-letter queue). */
  overflowed: number;
  /** Publishes refused by maxLength or maxBytes. */
  refused: number;
  /** Age in ms of the oldest ready message; 0 when none is ready. */
  oldestReadyAgeMs: number;
}

export interface QueueInfo {
  name: string;
  settings: QueueSettings;
  stats: QueueStats;
  /** Queues that name this one as their dead-letter queue. */
  deadLetterSources: string[];
}

export interface PublishInput {
  /**
   * Producer's id; generated when absent. Repeats within the queue's dedup
   * window are stored once.
   */
  id?: string;
  body: Buffer;
  headers?: Record<string, string>;
  /**
   * Names in `headers` that the protocol adapter wrote, not the publisher
   * (an AMQP message's properties and routing; the content type Usher adds
   * to a JSON body): bounded apart, so the user keeps the whole of the
   * documented header limits. Never taken from a request.
   */
  ownHeaders?: readonly string[];
  /** 0 (lowest) to 9 (highest); default 0. */
  priority?: number;
  /** FIFO message group. */
  group?: string | null;
  delayMs?: number;
  /** Time to live; the queue's messageTtlMs applies when shorter. */
  ttlMs?: number;
}

export interface PublishResult {
  id: string;
  /** True when this id was already stored within the dedup window. */
  duplicate: boolean;
}

export interface AdmissionHealth {
  level: 'normal' | 'pressure' | 'critical';
  reason: string;
  since: number;
  refused: number;
  rssBytes: number;
  memoryBudgetBytes: number | null;
  backlog: number;
  eventLoopDelayMs: number;
}

/** One message's answer when a batch is published message by message:
 * stored (or a duplicate), or refused under load or by the queue's limits. */
export type PublishAnswer = PublishResult | LoadRefusalError;

export interface ReceiveOptions {
  /** At most this many messages (1 to 1000). */
  max: number;
  /** Long poll: wait up to this long for the first message. */
  waitMs: number;
  /** Lease length; the queue's visibilityTimeoutMs when absent. */
  visibilityTimeoutMs?: number;
  /** Aborts a long poll (client went away). */
  signal?: AbortSignal;
}

export interface ReceivedMessage {
  id: string;
  queue: string;
  receipt: string;
  body: Buffer;
  headers: Record<string, string>;
  priority: number;
  group: string | null;
  /** 1 on first delivery. */
  attempt: number;
  redelivered: boolean;
  publishedAt: number;
  leaseDeadline: number;
}

export interface NackOptions {
  /** false dead-letters the message now; default true. */
  requeue?: boolean;
  /** Retry after this delay instead of the queue's backoff. */
  delayMs?: number;
  /** Why processing failed; kept with the message. */
  reason?: string;
}

/**
 * What a nack did with the message: retried later, or dead (on its last
 * attempt, expired, or nacked without requeue) and then dead-lettered, or
 * dropped for want of a dead-letter queue.
 */
export type NackResult =
  | { outcome: 'retried' }
  | { outcome: 'dead-lettered' | 'dropped'; reason: DeathReason };

/** A message as listed without leasing it (DLQ inspection). */
export interface PeekedMessage {
  id: string;
  body: Buffer;
  headers: Record<string, string>;
  priority: number;
  group: string | null;
  state: 'ready' | 'delayed' | 'in-flight';
  failures: number;
  publishedAt: number;
  availableAt: number;
  expiresAt: number | null;
}

export interface RedriveOptions {
  /** Target queue; default: each message's source queue from its death headers. */
  to?: string;
  /** Move at most this many. */
  max?: number;
  /** Only these message ids. */
  ids?: string[];
  /** Only messages whose last death had this reason (x-usher-death-reason). */
  reason?: string;
  /** Only messages that died in this queue (x-usher-death-queue). */
  source?: string;
  /**
   * Refuse (NOT_DEAD_LETTER_QUEUE) a queue that no queue dead-letters
   * into, whose messages may be live work: what HTTP asks unless its
   * caller sends anyQueue, as `usher dlq redrive` without --any-queue.
   */
  deadLettersOnly?: boolean;
}

/**
 * A consumer the broker pushes to (AMQP basic.consume), instead of one that
 * polls. The broker calls deliver() as messages become ready, as long as
 * credit() is above zero, taking turns between a queue's subscribers.
 */
export interface Subscriber {
  /** Messages it may take now (its prefetch left); Infinity for no limit. */
  credit(): number;
  /** Lease length of its deliveries. */
  leaseMs: number;
  /** Takes leased messages. Called synchronously; must not call back in. */
  deliver(messages: ReceivedMessage[]): void;
  /** The queue was deleted: no more deliveries will come. */
  cancelled?(): void;
  /**
   * Higher first: while subscribers of a higher priority have credit,
   * those of a lower one get nothing (AMQP's x-priority). Default 0.
   */
  priority?: number;
}

export interface Subscription {
  /** Stops deliveries; messages already delivered stay leased. */
  cancel(): void;
  /** Credit grew outside an ack (a prefetch raised): deliver again now. */
  wake(): void;
}

export interface AckOptions {
  /**
   * false: resolve once the ack is written, without waiting for its
   * fdatasync; it reaches the disk with the next batch that syncs. A crash
   * before then delivers the message again (at-least-once). For acks
   * nobody hears an answer to (AMQP basic.ack). Default true.
   */
  synced?: boolean;
}

export interface BrokerApi {
  createQueue(
    name: string,
    settings: QueueSettingsInput,
  ): Promise<{ created: boolean; updated: boolean; queue: QueueInfo }>;
  listQueues(): QueueInfo[];
  getQueue(name: string): QueueInfo;
  purgeQueue(name: string): Promise<{ purged: number }>;
  deleteQueue(name: string): Promise<void>;

  publish(queue: string, messages: PublishInput[]): Promise<PublishResult[]>;
  receive(queue: string, options: ReceiveOptions): Promise<ReceivedMessage[]>;
  /** Settles leases; each receipt answers true (acked) or false (not a current lease). */
  ack(queue: string, receipts: string[], options?: AckOptions): Promise<boolean[]>;
  nack(queue: string, receipt: string, options: NackOptions): Promise<NackResult>;
  /** Hands leases back unprocessed: ready at once, no attempt counted.
   * Answers how many were current leases; others are ignored. */
  release(queue: string, receipts: string[]): number;
  /** Sets the lease to run out `timeoutMs` from now; returns the new deadline. */
  extend(queue: string, receipt: string, timeoutMs: number): Promise<number>;
  /**
   * The RECEIPT_NOT_FOUND error for a receipt `queue` holds no lease for
   * (an ack answered false), naming the queue that does when one does.
   */
  notLeased(queue: string, receipt: string): UsherError;

  subscribe(queue: string, subscriber: Subscriber): Subscription;

  peek(queue: string, options: { limit: number; offset: number }): PeekedMessage[];
  /**
   * `checkDestination` throws for a queue the caller may not move messages
   * to; redrive calls it for every destination before it moves anything.
   */
  redrive(
    queue: string,
    options: RedriveOptions,
    checkDestination?: (queue: string) => void,
  ): Promise<{ moved: number }>;

  health(): {
    status: 'ok' | 'degraded';
    uptimeMs: number;
    queues: number;
    store: Record<string, number>;
    /** Present when admission control is on. */
    admission?: AdmissionHealth;
  };
  /**
   * Starts a scrub of every sealed log segment in the background
   * (storage/scrub.ts); false if one runs already.
   */
  scrub?(): boolean;
  /** Admission control's figures, for metrics; null when it is off. */
  admissionStats?(): AdmissionStats | null;
  /** How long the log's write batches took, from write to landing (for metrics). */
  storeBatchTimes?(): LatencyHistogram;
  /** Lets a caller wait for shutdown; rejects new work with BrokerClosedError once closing. */
  close(): Promise<void>;
}
