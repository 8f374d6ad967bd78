// How message bodies cross JSON (docs/http-api.md, "Message bodies"). The
// broker stores bytes; JSON carries text. Publishing, a message gives
// exactly one of:
//
//   "body": "text"          stored as the UTF-8 bytes of the text
//   "body": {..}|[..]|1|..  stored as its JSON text, and the header
//                           content-type: application/json is added
//                           unless the message names a content-type
//   "bodyBase64": "AAEC"    stored as the decoded bytes
//
// Answering, the same bytes come back as parsed JSON when the message's
// content-type is application/json and they parse, as a string when they
// are valid UTF-8, and as bodyBase64 otherwise. Nothing here depends on
// fastify, so the client can follow the same rules.

import { Buffer, isUtf8 } from 'node:buffer';

import { InvalidArgumentError } from '../errors.js';

export const JSON_CONTENT_TYPE = 'application/json';

/** A message body as it travels in JSON: exactly one field is set. */
export type WireBody = { body: unknown } | { bodyBase64: string };

/** What a publish request gives for a body. */
export interface WireBodyInput {
  body?: unknown;
  bodyBase64?: string;
  headers?: Record<string, string>;
}

// Standard alphabet (RFC 4648 section 4); padding may be left out, but
// when present it must be right. Buffer.from(text, 'base64') would
// silently skip bad characters instead. The pattern is a single character
// class so that it runs in one pass: a repeated group backtracks through a
// stack as deep as the input, which a 16 MiB body overflows.
const BASE64_CHARS = /^[A-Za-z0-9+/]*(={0,2})$/;

// With the u flag a surrogate pair reads as one code point, so only an
// unpaired half matches.
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Turns a published message's body into the bytes to store, and its
 * headers into the headers to store (a JSON value adds a content-type).
 *
 * @param field where the message sits in the request, e.g. `messages.3`,
 *   or '' at the top level; errors name `<field>.body`.
 * @throws InvalidArgumentError when not exactly one body field is given,
 *   the base64 is malformed, or a string cannot be UTF-8 encoded.
 */
export function bodyFromWire(
  input: WireBodyInput,
  field = '',
): { body: Buffer; headers: Record<string, string> | undefined; ownHeaders?: string[] } {
  const prefix = field === '' ? '' : `${field}.`;
  const hasBody = input.body !== undefined;
  const hasBase64 = input.bodyBase64 !== undefined;
  if (hasBody === hasBase64) {
    throw new InvalidArgumentError(
      `${prefix}body`,
      `a message needs exactly one of "body" and "bodyBase64", got ` +
        (hasBody ? 'both' : 'neither'),
    );
  }

  if (input.bodyBase64 !== undefined) {
    if (!isBase64(input.bodyBase64)) {
      throw new InvalidArgumentError(
        `${prefix}bodyBase64`,
        `${prefix}bodyBase64 is not valid base64 ` +
          `(${preview(input.bodyBase64)})`,
      );
    }
    return {
      body: Buffer.from(input.bodyBase64, 'base64'),
      headers: input.headers,
    };
  }

  if (typeof input.body === 'string') {
    // A lone surrogate has no UTF-8 form; encoding would replace it with
    // U+FFFD and store something other than what was sent.
    if (LONE_SURROGATE.test(input.body)) {
      throw new InvalidArgumentError(
        `${prefix}body`,
        `${prefix}body contains a lone UTF-16 surrogate, which has no ` +
          'UTF-8 form; send the bytes as "bodyBase64"',
      );
    }
    return { body: Buffer.from(input.body, 'utf8'), headers: input.headers };
  }

  const headers = { ...input.headers };
  // The content type Usher adds is its own: it takes nothing from the
  // publisher's 256 headers (PublishInput's ownHeaders).
  let ownHeaders: string[] | undefined;
  if (findHeader(headers, 'content-type') === undefined) {
    headers['content-type'] = JSON_CONTENT_TYPE;
    ownHeaders = ['content-type'];
  }
  let text: string;
  try {
    text = JSON.stringify(input.body);
  } catch {
    // Only a RangeError can happen here: nesting deeper than the stack.
    throw new InvalidArgumentError(
      `${prefix}body`,
      `${prefix}body is nested too deeply to store as JSON; send it as ` +
        'text in a JSON string or as "bodyBase64"',
    );
  }
  return { body: Buffer.from(text, 'utf8'), headers, ownHeaders };
}

/**
 * The JSON text of `fields` with the body added by the rules at the top
 * of this file. A JSON body goes in as its stored bytes, not parsed and
 * written out again: numbers keep every digit, and no nesting depth can
 * overflow the stack while answering (it would fail a whole receive).
 */
export function withBodyJson(
  fields: object,
  body: Buffer,
  headers: Record<string, string>,
): string {
  const head = JSON.stringify(fields).slice(0, -1);
  const separator = head.length > 1 ? ',' : '';

  if (!isUtf8(body)) {
    return `${head}${separator}"bodyBase64":"${body.toString('base64')}"}`;
  }
  const text = body.toString('utf8');
  if (isJsonContentType(findHeader(headers, 'content-type')) && isJson(text)) {
    return `${head}${separator}"body":${text}}`;
  }
  return `${head}${separator}"body":${JSON.stringify(text)}}`;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** True for `application/json`, with any parameters, in any case. */
export function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const semicolon = value.indexOf(';');
  const mediaType = semicolon === -1 ? value : value.slice(0, semicolon);
  return mediaType.trim().toLowerCase() === JSON_CONTENT_TYPE;
}

/** A header's value, matching its name without regard to case. */
export function findHeader(
  headers: Record<string, string> | undefined,
  name: string,
): string | undefined {
  if (headers === undefined) return undefined;
  if (Object.hasOwn(headers, name)) return headers[name];
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() === name) return headers[key];
  }
  return undefined;
}

function isBase64(text: string): boolean {
  const match = BASE64_CHARS.exec(text);
  if (match === null) return false;

  // Each 4 characters hold 3 bytes; a last group of 1 holds none.
  const padding = match[1].length;
  const remainder = text.length % 4;
  return padding === 0 ? remainder !== 1 : remainder === 0;
}

function preview(text: string): string {
  return text.length <= 24
    ? JSON.stringify(text)
    : `${JSON.stringify(text.slice(0, 24))}... (${text.length} chars)`;
}
