// What every page uses: htm bound to preact, the HTTP API, formatting.

import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);

/** Calls the HTTP API; throws the API's error message on failure. */
export async function api(method, path, body) {
  const response = await fetch(`..${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const answer = text === '' ? {} : JSON.parse(text);
  if (!response.ok) throw new Error(answer.error?.message ?? response.statusText);
  return answer;
}

export const queuePath = (name) => `/queues/${encodeURIComponent(name)}`;

/** A number for a table cell: integers as they are, others to 2 places. */
export function num(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

export function bytes(value) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return `${i === 0 ? value : value.toFixed(1)} ${units[i]}`;
}

export const time = (ms) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
/** `1 attempt`, `3 attempts`; a missing count reads `? attempts`. */
export function plural(count, word) {
  if (count === undefined || count === null) return `? ${word}s`;
  return `${count} ${word}${Number(count) === 1 ? '' : 's'}`;
}

/** An uptime for people: `42s`, `5m 3s`, `2h 5m`, `3d 4h`. */
export function humanDuration(ms) {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  const units = [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ];
  const parts = [];
  let rest = seconds;
  for (const [name, size] of units) {
    const count = Math.floor(rest / size);
    rest -= count * size;
    if (count > 0 || (parts.length > 0 && parts.length < 2)) parts.push(`${count}${name}`);
    if (parts.length === 2) break;
  }
  return parts.length === 0 ? '0s' : parts.join(' ');
}
