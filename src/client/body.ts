// Message bodies on the wire (docs/http-api.md, "Message bodies"): bytes
// travel as `bodyBase64`, everything else as `body`, and the broker decides
// from the stored bytes and content-type which of the two it answers with.

import { CLIENT_ERROR_CODES, UsherClientError } from './errors.js';
import type {
  OutgoingMessage,
  PeekedMessage,
  ReceivedBody,
  ReceivedMessage,
} from './types.js';

/** A message as POST /queues/{name}/messages takes it. */
export interface WireMessage {
  body?: unknown;
  bodyBase64?: string;
  id?: string;
  headers?: Record<string, string>;
  priority?: number;
  group?: string | null;
  delayMs?: number;
  ttlMs?: number;
}

/** A received or peeked message as the broker answers it. */
type WireBody = { body?: unknown; bodyBase64?: unknown };
export type WireReceived = Omit<ReceivedMessage, 'body'> & WireBody;
export type WirePeeked = Omit<PeekedMessage, 'body'> & WireBody;

/**
 * Turns a message to publish into its wire form. `field` names it in
 * errors (`body`, or `messages.3.body` inside a batch).
 */
export function encodeMessage(
  message: OutgoingMessage,
  field: string,
): WireMessage {
  const wire: WireMessage = {
    id: message.id,
    headers: message.headers,
    priority: message.priority,
    group: message.group,
    delayMs: message.delayMs,
    ttlMs: message.ttlMs,
  };

  const body = message.body;
  if (body instanceof Uint8Array) {
    // Honour byteOffset: a Buffer may be a slice of a larger pooled one.
    wire.bodyBase64 = Buffer.from(
      body.buffer,
      body.byteOffset,
      body.byteLength,
    ).toString('base64');
  } else if (isJsonable(body)) {
    wire.body = body;
  } else {
    throw new UsherClientError(
      CLIENT_ERROR_CODES.INVALID_ARGUMENT,
      0,
      `cannot send a body of type ${typeof body}: expected bytes, a ` +
        'string or a JSON value',
      { field },
    );
  }
  return wire;
}

const MESSAGE_FIELDS = new Set(['body', 'id', 'headers', 'priority', 'group', 'delayMs', 'ttlMs']);

/**
 * Throws INVALID_ARGUMENT for a publish option the client does not know:
 * TypeScript catches `priorty` at compile time, plain JavaScript dropped
 * it without a word. `prefix` names where (`options.`, `messages.3.`).
 */
export function checkMessageFields(message: object, prefix: string): void {
  for (const key of Object.keys(message)) {
    if (MESSAGE_FIELDS.has(key)) continue;
    throw new UsherClientError(
      CLIENT_ERROR_CODES.INVALID_ARGUMENT,
      0,
      `${prefix}${key} is not a known publish option (${[...MESSAGE_FIELDS].join(', ')})`,
      { field: `${prefix}${key}` },
    );
  }
}

/** Throws INVALID_ARGUMENT, naming `field`, for a body that cannot be sent. */
export function checkBody(body: unknown, field: string): void {
  if (body instanceof Uint8Array || isJsonable(body)) return;
  throw new UsherClientError(
    CLIENT_ERROR_CODES.INVALID_ARGUMENT,
    0,
    `cannot send a body of type ${typeof body}: expected bytes, a ` +
      'string or a JSON value',
    { field },
  );
}

function isJsonable(body: unknown): boolean {
  const type = typeof body;
  if (type === 'number') return Number.isFinite(body);
  return (
    type === 'string' || type === 'boolean' || type === 'object'
  );
}

/** The body of a received or peeked message: bytes become a Buffer. */
export function decodeBody(wire: WireBody): ReceivedBody {
  if (typeof wire.bodyBase64 === 'string') {
    return Buffer.from(wire.bodyBase64, 'base64');
  }
  return wire.body as ReceivedBody;
}

export function decodeReceived(wire: WireReceived): ReceivedMessage {
  return {
    id: wire.id,
    queue: wire.queue,
    receipt: wire.receipt,
    body: decodeBody(wire),
    headers: wire.headers ?? {},
    priority: wire.priority,
    group: wire.group ?? null,
    attempt: wire.attempt,
    redelivered: wire.redelivered,
    publishedAt: wire.publishedAt,
    leaseDeadline: wire.leaseDeadline,
  };
}

export function decodePeeked(wire: WirePeeked): PeekedMessage {
  return {
    id: wire.id,
    body: decodeBody(wire),
    headers: wire.headers ?? {},
    priority: wire.priority,
    group: wire.group ?? null,
    state: wire.state,
    failures: wire.failures,
    publishedAt: wire.publishedAt,
    availableAt: wire.availableAt,
    expiresAt: wire.expiresAt ?? null,
  };
}
