// The AMQP transport's words for the HTTP client's: a delivery decoded
// by the HTTP client's body rules, a body to bytes, a refusal to the HTTP
// client's error codes. Kept apart from the connection and its channels
// (amqp.ts).

import { isUtf8 } from 'node:buffer';

import type { BasicProperties } from '../amqp/content.js';
import { REPLY_NAMES } from '../amqp/constants.js';
import { plainValue } from '../amqp/field-table.js';
import { CLIENT_ERROR_CODES, UsherClientError } from './errors.js';
import type { MessageBody, ReceivedBody } from './types.js';

/** A message pushed to an AMQP consumer. */
export interface AmqpDelivery {
  body: ReceivedBody;
  headers: Record<string, string>;
  priority: number;
  redelivered: boolean;
  /** 1 on first delivery; from x-delivery-count when the broker sends it. */
  attempt: number;
}

/**
 * A delivered message in the client's terms: the body decoded by the HTTP
 * client's rules, text headers, and the content type as `content-type`.
 */
export function decodeDelivery(
  properties: BasicProperties,
  bytes: Buffer,
  redelivered: boolean,
): AmqpDelivery {
  const headers: Record<string, string> = {};
  let attempt = redelivered ? 2 : 1;
  for (const [name, value] of properties.headers ?? []) {
    const plain = plainValue(value);
    if (name === 'x-delivery-count') attempt = Number(plain) + 1 || attempt;
    else if (typeof plain === 'string') headers[name] = plain;
  }
  if (properties.contentType !== undefined) headers['content-type'] = properties.contentType;
  let body: ReceivedBody = bytes;
  if (properties.contentType === 'application/json') {
    try {
      body = JSON.parse(bytes.toString('utf8'));
    } catch {
      body = bytes.toString('utf8');
    }
  } else if (isUtf8(bytes)) body = bytes.toString('utf8');
  return {
    body,
    headers,
    priority: properties.priority ?? 0,
    redelivered,
    attempt,
  };
}

export function outcomeUnknown(why: string): UsherClientError {
  return new UsherClientError(
    CLIENT_ERROR_CODES.OUTCOME_UNKNOWN,
    0,
    `${why} before the broker confirmed: the message may or may not be stored`,
  );
}

/** The body's bytes, by the same rules as the HTTP client's. */
export function bodyBytes(body: MessageBody): { bytes: Buffer; contentType?: string } {
  if (Buffer.isBuffer(body)) return { bytes: body };
  if (body instanceof Uint8Array)
    return { bytes: Buffer.from(body.buffer, body.byteOffset, body.byteLength) };
  if (typeof body === 'string') return { bytes: Buffer.from(body) };
  return { bytes: Buffer.from(JSON.stringify(body)), contentType: 'application/json' };
}

/**
 * A refusal on the admin channel in the HTTP client's terms where they
 * match (no queue: QUEUE_NOT_FOUND; a redeclare with other settings:
 * QUEUE_EXISTS; bad settings: INVALID_ARGUMENT), else AMQP_<reply name>.
 */
export function refusalOf(replyCode: number, replyText: string): UsherClientError {
  if (replyCode === 404) return new UsherClientError('QUEUE_NOT_FOUND', 404, replyText);
  if (replyCode === 406 && /inequivalent arg/.test(replyText)) {
    return new UsherClientError('QUEUE_EXISTS', 409, replyText);
  }
  if (replyCode === 406) return new UsherClientError('INVALID_ARGUMENT', 400, replyText);
  return new UsherClientError(`AMQP_${REPLY_NAMES.get(replyCode) ?? replyCode}`, 0, replyText);
}
