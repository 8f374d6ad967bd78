// The shapes the client hands out and takes in. Queue info and settings are
// the broker's own types (docs/http-api.md sends them unchanged); messages
// differ from the broker's because bodies travel as JSON, text or base64.

import type {
  NackOptions,
  NackResult,
  PeekedMessage as BrokerPeekedMessage,
  QueueInfo,
  QueueSettingsInput,
  QueueStats,
  ReceivedMessage as BrokerReceivedMessage,
} from '../broker/types.js';
import type { BackoffSettings, DeathReason, QueueSettings } from '../engine/types.js';

export type {
  BackoffSettings,
  NackOptions,
  NackResult,
  QueueInfo,
  QueueSettings,
  QueueSettingsInput,
  QueueStats,
};

/** Any value JSON can carry. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

/**
 * What a message body can be. Bytes (Buffer, Uint8Array) are stored as
 * they are; a string as its UTF-8 text; any other value as its JSON text
 * (JSON.stringify) with `content-type: application/json`. `object` rather
 * than JsonValue so that values typed by interfaces are accepted.
 */
export type MessageBody =
  | Uint8Array
  | string
  | number
  | boolean
  | null
  | object;

/**
 * A body as it comes back: the parsed value when the message is JSON, a
 * string when its bytes are UTF-8 text, a Buffer otherwise. Bytes that
 * happen to be valid UTF-8 come back as a string; `Buffer.from(body)`
 * recovers them exactly.
 */
export type ReceivedBody = JsonValue | Buffer;

export interface PublishOptions {
  /** Your id; a repeat within the dedup window is stored once. */
  id?: string;
  headers?: Record<string, string>;
  /** 0 (lowest) to 9 (highest); default 0. */
  priority?: number;
  /** FIFO message group. */
  group?: string | null;
  /** Not deliverable for this long. */
  delayMs?: number;
  /** Dead-lettered as expired after this long. */
  ttlMs?: number;
}

/** One message of a publishBatch call. */
export interface OutgoingMessage extends PublishOptions {
  body: MessageBody;
}

export interface PublishResult {
  id: string;
  /** True when this id was already stored within the dedup window. */
  duplicate: boolean;
}

export interface ReceiveOptions {
  /** At most this many messages, 1 to 1000; default 1. */
  max?: number;
  /** Long poll: wait this long (at most 20000) for a message; default 0. */
  waitMs?: number;
  /** Lease length; the queue's visibilityTimeoutMs when left out. */
  visibilityTimeoutMs?: number;
  /** Gives up the request; the call rejects with code `ABORTED`. */
  signal?: AbortSignal;
}

/** A message leased by receive(): settle it with ack, nack or extend. */
export type ReceivedMessage = Omit<BrokerReceivedMessage, 'body'> & {
  body: ReceivedBody;
};

export interface AckResult {
  acked: number;
  /** One per receipt, in order: false when it was not a current lease. */
  results: boolean[];
}

/** A message listed by peek(), without a lease. */
export type PeekedMessage = Omit<BrokerPeekedMessage, 'body'> & {
  body: ReceivedBody;
};

export interface PeekOptions {
  /** How many to list; the server's default when left out. */
  limit?: number;
  /** How many to skip from the head of the queue. */
  offset?: number;
}

export interface RedriveOptions {
  /** Target queue; default: each message's source queue. */
  to?: string;
  /** Move at most this many. */
  max?: number;
  /** Only these message ids. */
  ids?: string[];
  /** Only messages whose last death had this reason (`x-usher-death-reason`). */
  reason?: DeathReason;
  /** Only messages that last died in this queue (`x-usher-death-queue`). */
  source?: string;
  /**
   * Move the messages of a queue no queue dead-letters into (live work,
   * perhaps); without it the broker refuses one with 409
   * NOT_DEAD_LETTER_QUEUE.
   */
  anyQueue?: boolean;
}

export interface CreateQueueResult {
  /** false when the queue was already there with the same settings. */
  created: boolean;
  queue: QueueInfo;
}

export interface Health {
  status: 'ok' | 'degraded';
  uptimeMs?: number;
  queues?: number;
  /** The ports the broker's other protocols listen on, when it has them. */
  listeners?: { amqp?: number; amqps?: number };
  [key: string]: unknown;
}
