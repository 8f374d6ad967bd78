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
