// Shapes that cross between the engine, the log and callers: a logged
// message back into the engine, a message moved to another queue, the
// records of a retry or a move, the view a consumer receives.

import type { QueueEngine, Outcome } from '../engine/queue.js';
import type { Delivery, Message, QueueSettings } from '../engine/types.js';
import type { LogStore } from '../storage/log-store.js';
import type { LogRecord, PublishedRecord } from '../storage/records.js';
import { publishedRecord } from './durability.js';
import type { ReplayedMessage } from './recovery.js';
import type { ReceivedMessage } from './types.js';

export const FIRST_ERROR_HEADER = 'x-usher-first-error';
export const LAST_ERROR_HEADER = 'x-usher-last-error';

/** Messages read back from the log, as first published (the cold backlog). */
export function readBack(store: LogStore, seqs: number[]): (Message | undefined)[] {
  return store.readPublished(seqs).map((record) =>
    record === undefined ? undefined : messageFrom(record));
}

/**
 * A new message's time to live: the shorter of its own and its queue's;
 * null for neither. No arrays: this runs once per published message.
 */
export function shorterTtl(
  messageTtlMs: number | undefined,
  queueTtlMs: number | null,
): number | null {
  if (messageTtlMs === undefined) return queueTtlMs;
  return queueTtlMs === null ? messageTtlMs : Math.min(messageTtlMs, queueTtlMs);
}

/** True when `bytes` is the whole of its memory, so keeping it keeps nothing more. */
export function ownsItsMemory(bytes: Buffer): boolean {
  return bytes.byteOffset === 0 && bytes.length === bytes.buffer.byteLength;
}

export function declared(name: string, settings: QueueSettings): LogRecord {
  return { type: 'queue-declared', name, settings: { ...settings } };
}

export function messageFrom(source: ReplayedMessage | PublishedRecord | Message): Message {
  return {
    seq: source.seq,
    id: source.id,
    priority: source.priority,
    group: source.group,
    headers: source.headers,
    body: source.body,
    publishedAt: source.publishedAt,
    availableAt: source.availableAt,
    expiresAt: source.expiresAt,
    failures: source.failures,
    state: 'ready',
    lease: null,
    // Set by the engine; present from the start so every message has one shape.
    loggedHeaders: undefined,
  };
}

/** Enqueues a fresh copy of `message` in `destination`, attempts reset. */
export function moveTo(
  destination: QueueEngine,
  message: Message,
  headers: Record<string, string>,
  now: number,
): Message {
  const ttl = destination.settings.messageTtlMs;
  const moved: Message = {
    ...message,
    headers,
    failures: 0,
    availableAt: now,
    expiresAt: ttl === null ? null : now + ttl,
    state: 'ready',
    lease: null,
  };
  destination.enqueue(moved, now);
  return moved;
}

export function retriedRecord(
  engine: QueueEngine,
  { message }: Outcome,
  error: string | undefined,
): LogRecord {
  if (error === undefined) {
    return {
      type: 'retried',
      seq: message.seq,
      failures: message.failures,
      availableAt: message.availableAt,
    };
  }
  // A nack that says why keeps the first reason and the latest (C4); a
  // `published` record of the message as it now is carries the new
  // headers (see moveRecords for why not a `moved` record).
  message.headers = { ...message.headers, [LAST_ERROR_HEADER]: error };
  message.headers[FIRST_ERROR_HEADER] ??= error;
  return publishedRecord(engine.name, message);
}

export function view(engine: QueueEngine, delivery: Delivery): ReceivedMessage {
  const { message } = delivery;
  return {
    id: message.id,
    queue: engine.name,
    receipt: delivery.receipt,
    body: message.body,
    headers: message.headers,
    priority: message.priority,
    group: message.group,
    attempt: delivery.attempt,
    redelivered: delivery.attempt > 1,
    publishedAt: message.publishedAt,
    leaseDeadline: delivery.leaseDeadline,
  };
}
