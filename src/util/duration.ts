// Human-friendly durations and sizes for flags and config: `250ms`, `5s`,
// `1m30s` or bare milliseconds; `16MiB`, `512KiB` or bare bytes. Parsing is
// strict: anything else is refused with the offending text quoted.

import { InvalidArgumentError } from '../errors.js';

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1_000,
  mb: 1_000_000,
  gb: 1_000_000_000,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** One `<number><unit>` part; a duration is one or more in a row. */
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
const SIZE = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;
const BARE_INTEGER = /^\d+$/;

/**
 * Parses a duration into whole milliseconds: `250ms`, `5s`, `1m`, `1h`,
 * `1d`, compounds such as `1m30s`, or bare milliseconds (`1500`).
 *
 * @example
 *   parseDuration('1m30s'); // 90000
 *   parseDuration('1500');  // 1500
 *
 * @param field names the flag or setting in the error, e.g. `--delay`.
 * @throws InvalidArgumentError quoting `text` when it is not a duration.
 */
export function parseDuration(text: string, field = 'duration'): number {
  const trimmed = text.trim();
  if (BARE_INTEGER.test(trimmed)) {
    return checkSafe(Number(trimmed), text, field);
  }

  let total = 0;
  let end = 0;
  DURATION_PART.lastIndex = 0;
  for (;;) {
    const part = DURATION_PART.exec(trimmed);
    if (part === null) break;
    total += Number(part[1]) * DURATION_UNITS[part[2]];
    end = DURATION_PART.lastIndex;
  }

  // Sticky matching stops at the first character that is not a part, so
  // anything left over (or nothing matched at all) means bad input.
  if (end === 0 || end !== trimmed.length) {
    throw new InvalidArgumentError(
      field,
      `invalid duration "${text}": expected milliseconds or a number ` +
        'with a unit (ms, s, m, h, d), e.g. 250ms, 5s, 1m30s',
    );
  }
  return checkSafe(Math.round(total), text, field);
}

/**
 * Parses a size into bytes: bare bytes (`1024`), binary units (`512KiB`,
 * `16MiB`, `1GiB`) or decimal ones (`500KB`, `2MB`, `1GB`). Units ignore
 * case; a space between number and unit is allowed.
 *
 * @example
 *   parseSize('16MiB'); // 16777216
 *
 * @throws InvalidArgumentError quoting `text` when it is not a size.
 */
export function parseSize(text: string, field = 'size'): number {
  const match = SIZE.exec(text.trim());
  const unit = match ? SIZE_UNITS[(match[2] || 'b').toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new InvalidArgumentError(
      field,
      `invalid size "${text}": expected bytes or a number with a unit ` +
        '(B, KiB, MiB, GiB, KB, MB, GB), e.g. 512KiB, 16MiB',
    );
  }
  return checkSafe(Math.round(Number(match[1]) * unit), text, field);
}

/**
 * Formats milliseconds the way parseDuration reads them, largest units
 * first: 90000 gives `1m30s`, 1500 gives `1.5s`, 250 gives `250ms`.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return String(ms);
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${trimFraction(ms / 1_000)}s`;

  let rest = Math.round(ms / 1_000) * 1_000;
  let out = '';
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = DURATION_UNITS[unit];
    const count = Math.floor(rest / size);
    if (count > 0) out += `${count}${unit}`;
    rest -= count * size;
  }
  return out;
}

/** Formats bytes with a binary unit: 1536 gives `1.5KiB`. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes}B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i += 1;
  }
  return `${trimFraction(value)}${units[i]}`;
}

function trimFraction(value: number): string {
  return String(Math.round(value * 10) / 10);
}

function checkSafe(value: number, text: string, field: string): number {
  if (!Number.isSafeInteger(value)) {
    throw new InvalidArgumentError(field, `"${text}" is too large`);
  }
  return value;
}
