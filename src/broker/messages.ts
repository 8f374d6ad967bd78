// Shapes that cross between the engine, the log and callers: a logged
// message back into the engine, a message moved to another queue, the
// records of a retry or a move, the view a consumer receives.

import type { QueueEngine, Outcome } from '../engine/queue.js';
import type { Delivery, Message, QueueSettings } from '../engine/types.js';
import type { LogStore } from '../storage/log-store.js';
import type { LogRecord, PublishedRecord } from '../storage/records.js';
import { unshared } from '../util/random-id.js';
import { publishedRecord } from './durability.js';
import type { ReplayedMessage } from './recovery.js';
import type { ReceivedMessage } from './types.js';

/**
 * The headers of a published record that has none, shared: one object a
 * message was half of what the record itself cost (56 of ~150 bytes, issue
 * #3's growth allocates per message). Frozen, so that nothing can change
 * them for every message at once; a message kept in memory gets an object
 * of its own (ownHeaders), as callers may receive and change it.
 */
export const NO_HEADERS: Record<string, string> = Object.freeze({});

/** `message` with headers of its own in place of NO_HEADERS. */
export function ownHeaders(message: Message): Message {
  if (message.headers === NO_HEADERS) message.headers = {};
  return message;
}

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

/**
 * True when keeping `bytes` keeps little else: it is the whole of its
 * memory, or a view of at least a quarter of it. A body that arrived as
 * a view of a socket chunk is copied before it is kept unless so: a
 * 464 B body must not hold a 64 KiB chunk, but a 16 KiB body held in a
 * 64 KiB chunk beside three others costs at most 4x its size, and
 * copying it cost about a tenth of the broker's CPU in a 16 KiB publish
 * (a copy of 16 KiB, its allocation, and the GC that external memory
 * drives).
 */
export function pinsLittle(bytes: Buffer): boolean {
  return bytes.length * PIN_RATIO >= bytes.buffer.byteLength;
}

/** A view kept as it is may hold at most this many times its size. */
const PIN_RATIO = 4;

/**
 * Bodies up to this size are let go of while a publish that goes to disk
 * only is written: the log holds what it writes, a copy or the buffer
 * itself (storage/batch.ts; broker.ts, publishBatch). A larger one is
 * kept, for its stand-in would keep as many zeros for good.
 */
export const LET_GO_BYTES = 64 * 1024;

/** The zeros every stand-in is a view of, allocated once. */
let zeros = Buffer.alloc(0);

/**
 * What a record keeps of a body let go of: `length` zeros, a view of one
 * buffer all stand-ins share. The ledger and the queue's byte counts read
 * its length; nothing reads its bytes (the message is read back from the
 * log when delivered).
 */
export function standIn(length: number): Buffer {
  if (zeros.length < length) zeros = Buffer.alloc(Math.max(length, LET_GO_BYTES));
  return zeros.subarray(0, length);
}

/** Each body of LET_GO_BYTES or less, which the log now holds, becomes its stand-in. */
export function letGoOfBodies(records: readonly PublishedRecord[]): void {
  for (const record of records) {
    if (record.body.length <= LET_GO_BYTES) record.body = standIn(record.body.length);
  }
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
    // It may outlive the others of its publish here (util/random-id.ts).
    id: unshared(message.id),
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

/**
 * A delivery as consumers see it. Redelivered: after an attempt that
 * failed, or when it may have been delivered before a crash (seq up to
 * `maybeDeliveredUpTo`, crash-marks.ts).
 */
export function view(
  engine: QueueEngine,
  delivery: Delivery,
  maybeDeliveredUpTo: number,
): ReceivedMessage {
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
    redelivered: delivery.attempt > 1 || message.seq <= maybeDeliveredUpTo,
    publishedAt: message.publishedAt,
    leaseDeadline: delivery.leaseDeadline,
  };
}
