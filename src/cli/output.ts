// How the CLI shows things: aligned key/value blocks and tables for
// people, one JSON object per line for scripts.

import type {
  PeekedMessage,
  ReceivedBody,
  ReceivedMessage,
} from '../client/index.js';

/** Lines of `key  value` with the values lined up. */
export function keyValues(
  pairs: ReadonlyArray<readonly [string, unknown]>,
): string[] {
  const width = Math.max(...pairs.map(([key]) => key.length));
  return pairs.map(([key, value]) => `${key.padEnd(width)}  ${String(value)}`);
}

/** A header row and rows, each column as wide as its widest cell. */
export function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => row[i].length)),
  );
  // The last column is not padded: no trailing spaces.
  const last = header.length - 1;
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === last ? cell : cell.padEnd(widths[i])))
      .join('  ');
  return [line(header), ...rows.map(line)];
}

/** A body for a person: text as is, JSON compact, bytes as base64. */
export function bodyText(body: ReceivedBody): string {
  if (Buffer.isBuffer(body)) {
    return `(${body.length} bytes, base64) ${body.toString('base64')}`;
  }
  return typeof body === 'string' ? body : JSON.stringify(body);
}

export function headersText(headers: Record<string, string>): string {
  const entries = Object.entries(headers);
  if (entries.length === 0) return '-';
  return entries.map(([key, value]) => `${key}=${value}`).join(', ');
}

/**
 * A message as one JSON object for --json output. Bodies keep the wire
 * form: `body` for JSON and text, `bodyBase64` for bytes.
 */
export function messageJson(message: ReceivedMessage | PeekedMessage): string {
  const { body, ...rest } = message;
  const encoded = Buffer.isBuffer(body)
    ? { bodyBase64: body.toString('base64') }
    : { body };
  return JSON.stringify({ ...rest, ...encoded });
}
