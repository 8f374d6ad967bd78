// Checks of what callers hand the broker: every refusal names the field
// and quotes the value (docs/errors.md). Also the free-space probe the
// disk floor reads.

import { statfs } from 'node:fs';

import { InvalidArgumentError, MessageTooLargeError } from '../errors.js';
import { MAX_PRIORITY, MIN_PRIORITY } from '../engine/types.js';
import { MAX_DURATION_MS, checkDuration, checkInteger } from './settings.js';
import type { PublishInput } from './types.js';

/** What a publisher may put in a message's headers (README, "Keep the limits"). */
export const MAX_HEADERS = 256;
export const MAX_HEADER_BYTES = 64 * 1024;
/**
 * Headers a protocol adapter writes beside the user's (PublishInput's
 * ownHeaders) are bounded apart, so they take nothing from the user's
 * limits. Over AMQP they are the properties (at most 12, each a short
 * string of 255 bytes or less), the exchange and routing key (short
 * strings) and the base64 copy of the typed header table: a table within
 * the user's limits encodes in at most 4 + 64 KiB + 6 bytes per entry,
 * 67,076 bytes, 89,436 in base64. 96 KiB holds all of it with room.
 */
const MAX_OWN_HEADERS = 16;
const MAX_OWN_HEADER_BYTES = 96 * 1024;
const NO_OWN_HEADERS: readonly string[] = [];
/** Read only: a message without headers is checked as one with none. */
const NO_HEADERS: Record<string, string> = Object.freeze({});
export const MAX_ID_LENGTH = 256;

export function checkPublish(
  input: PublishInput,
  prefix: string,
  maxMessageBytes: number,
): void {
  if (!Buffer.isBuffer(input.body)) {
    throw new InvalidArgumentError(`${prefix}body`, 'body must be bytes');
  }
  if (input.body.length > maxMessageBytes) {
    throw new MessageTooLargeError(input.body.length, maxMessageBytes);
  }
  if (
    input.id !== undefined &&
    (typeof input.id !== 'string' ||
      input.id.length === 0 ||
      input.id.length > MAX_ID_LENGTH)
  ) {
    throw new InvalidArgumentError(
      `${prefix}id`,
      `id must be a string of 1 to ${MAX_ID_LENGTH} characters, got ${JSON.stringify(input.id)}`,
    );
  }
  checkWellFormed(input.id, `${prefix}id`);
  checkWellFormed(input.group, `${prefix}group`);
  // for-in, not Object.entries: this runs for every message published.
  const headers = input.headers;
  if (typeof headers === 'object' && headers !== null) {
    for (const key in headers) {
      if (!Object.hasOwn(headers, key)) continue;
      // The field names are made only for an error, not for every header.
      const value = headers[key];
      if (!key.isWellFormed()) checkWellFormed(key, `${prefix}headers`);
      if (typeof value === 'string' && !value.isWellFormed()) {
        checkWellFormed(value, `${prefix}headers.${key}`);
      }
    }
  }
  const priority = input.priority ?? 0;
  if (!Number.isInteger(priority) || priority < MIN_PRIORITY || priority > MAX_PRIORITY) {
    throw new InvalidArgumentError(
      `${prefix}priority`,
      `priority must be an integer from ${MIN_PRIORITY} to ${MAX_PRIORITY}, ` +
        `got ${JSON.stringify(priority)}`,
    );
  }
  if (
    input.group !== undefined &&
    input.group !== null &&
    (typeof input.group !== 'string' || input.group.length > MAX_ID_LENGTH)
  ) {
    throw new InvalidArgumentError(
      `${prefix}group`,
      `group must be a string of at most ${MAX_ID_LENGTH} characters`,
    );
  }
  if (input.delayMs !== undefined) checkDuration(input.delayMs, `${prefix}delayMs`);
  if (input.ttlMs !== undefined) {
    checkDuration(input.ttlMs, `${prefix}ttlMs`, { min: 1, max: 14 * MAX_DURATION_MS });
  }
  checkHeaders(input.headers ?? NO_HEADERS, `${prefix}headers`, input.ownHeaders);
}

export function freeBytesOf(dir: string): Promise<number> {
  return new Promise((resolve, reject) => {
    statfs(dir, (err, stats) =>
      err ? reject(err) : resolve(stats.bavail * stats.bsize),
    );
  });
}

/** A count from `min` (default 1) to `max`. */
export function checkCount(value: unknown, field: string, max: number, min = 1): number {
  return checkInteger(value, field, min, max);
}

/** Refuses text with a lone UTF-16 surrogate: it has no UTF-8 form, so
 * the log would store U+FFFD and two different ids would become one. */
export function checkWellFormed(value: unknown, field: string): void {
  if (typeof value === 'string' && !value.isWellFormed()) {
    throw new InvalidArgumentError(
      field,
      `${field} contains a lone UTF-16 surrogate, which has no UTF-8 form`,
    );
  }
}

/** Cuts `text` to at most `max` UTF-16 units without splitting a pair. */
export function cutText(text: string, max: number): string {
  const cut = text.slice(0, max);
  return cut.isWellFormed() ? cut : cut.slice(0, -1);
}

/**
 * Checks a message's headers: every value text, and the user's within
 * MAX_HEADERS and MAX_HEADER_BYTES. `ownHeaders` (distinct names) are
 * those the protocol adapter wrote itself, bounded apart (MAX_OWN_*).
 */
export function checkHeaders(
  headers: Record<string, string>,
  field: string,
  ownHeaders: readonly string[] = NO_OWN_HEADERS,
): void {
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
    throw new InvalidArgumentError(field, `${field} must be an object of strings`);
  }
  // One for-in and one pass over ownHeaders, not Object.entries: this
  // runs for every message published (twice over AMQP), and each pass
  // looks keys up in objects of many shapes. UTF-8 takes at most 3 bytes
  // per UTF-16 unit: under that bound the exact size is not needed, which
  // spares two native calls per header.
  let count = 0;
  let mostBytes = 0;
  let notText: string | undefined;
  for (const key in headers) {
    if (!Object.hasOwn(headers, key)) continue;
    count++;
    const value = headers[key];
    if (typeof value !== 'string') notText ??= key;
    else mostBytes += 3 * (key.length + value.length);
  }
  let ownCount = 0;
  let mostOwnBytes = 0;
  // Indexed, not for-of: here V8 made an iterator and a result object a
  // name, about 300 bytes a message over the two checks.
  for (let i = 0; i < ownHeaders.length; i++) {
    const name = ownHeaders[i];
    if (!Object.hasOwn(headers, name)) continue;
    ownCount++;
    const value = headers[name];
    if (typeof value === 'string') mostOwnBytes += 3 * (name.length + value.length);
  }
  checkHeaderCount(count - ownCount, field);
  if (ownCount > MAX_OWN_HEADERS) {
    throw new InvalidArgumentError(
      field,
      `at most ${MAX_OWN_HEADERS} headers of the protocol's own, got ${ownCount}`,
    );
  }
  if (notText !== undefined) {
    throw new InvalidArgumentError(
      `${field}.${notText}`,
      `header "${notText}" must be a string`,
    );
  }

  if (mostBytes - mostOwnBytes > MAX_HEADER_BYTES) {
    let bytes = 0;
    for (const key in headers) {
      if (!Object.hasOwn(headers, key) || ownHeaders.includes(key)) continue;
      bytes += Buffer.byteLength(key) + Buffer.byteLength(headers[key]);
    }
    checkHeaderBytes(bytes, field);
  }
  if (mostOwnBytes > MAX_OWN_HEADER_BYTES) {
    let ownBytes = 0;
    for (const name of ownHeaders) {
      if (!Object.hasOwn(headers, name)) continue;
      ownBytes += Buffer.byteLength(name) + Buffer.byteLength(headers[name]);
    }
    if (ownBytes > MAX_OWN_HEADER_BYTES) {
      throw new InvalidArgumentError(
        field,
        `headers of the protocol's own total ${ownBytes} bytes, over ${MAX_OWN_HEADER_BYTES}`,
      );
    }
  }
}

/**
 * The user's header count within MAX_HEADERS, whichever protocol counted
 * it. `atLeast`: the count is where the protocol stopped counting (the
 * AMQP decoder reads no header past the limit), and there may be more.
 */
export function checkHeaderCount(count: number, field: string, atLeast = false): void {
  if (count > MAX_HEADERS) {
    throw new InvalidArgumentError(
      field,
      `at most ${MAX_HEADERS} headers, got ${count}${atLeast ? ' or more' : ''}`,
    );
  }
}

/** The user's header bytes (names and values) within MAX_HEADER_BYTES. */
export function checkHeaderBytes(bytes: number, field: string): void {
  if (bytes > MAX_HEADER_BYTES) {
    throw new InvalidArgumentError(
      field,
      `headers total ${bytes} bytes, over ${MAX_HEADER_BYTES}`,
    );
  }
}
