// The records of Usher's write-ahead log. Every change of durable state is
// one record; replaying them in order rebuilds every queue.
//
// Messages are identified in the log by `seq`, a number the store assigns
// once at publish and that never changes, even when the message moves to
// another queue (dead-letter, redrive) or is copied forward by compaction.
// A message's body lives in its latest `published` record; later records
// name only the seq, so they stay small.

export interface QueueSettingsRecord {
  readonly [key: string]: unknown;
}

export interface QueueDeclaredRecord {
  type: 'queue-declared';
  name: string;
  /** The queue's settings as JSON; the store does not interpret them. */
  settings: QueueSettingsRecord;
}

export interface QueueDeletedRecord {
  type: 'queue-deleted';
  name: string;
}

export interface PublishedRecord {
  type: 'published';
  seq: number;
  queue: string;
  id: string;
  priority: number;
  group: string | null;
  headers: Record<string, string>;
  body: Buffer;
  /** Epoch milliseconds. */
  publishedAt: number;
  availableAt: number;
  expiresAt: number | null;
  /** Deliveries that ended without an ack, as far as the log knows. */
  failures: number;
  /**
   * The broker made the id (a UUID; no producer gave one), so it is never
   * a dedup id and the ledger keeps none (ledger.ts). Kept in the log from
   * segment format 3 (codec.ts); a record without it counts as a
   * producer's.
   */
  madeId?: boolean;
}

/** Settled messages: acked, purged, deleted with their queue, or dropped. */
export interface SettledRecord {
  type: 'settled';
  seqs: number[];
}

/** A delivery failed (nack with requeue or lease expiry). */
export interface RetriedRecord {
  type: 'retried';
  seq: number;
  failures: number;
  availableAt: number;
}

/** A message changed queue: dead-lettered, redriven or expired. */
export interface MovedRecord {
  type: 'moved';
  seq: number;
  queue: string;
  headers: Record<string, string>;
  failures: number;
  availableAt: number;
  expiresAt: number | null;
}

export type LogRecord =
  | QueueDeclaredRecord
  | QueueDeletedRecord
  | PublishedRecord
  | SettledRecord
  | RetriedRecord
  | MovedRecord;
