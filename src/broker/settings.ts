// Queue names and settings as callers give them: checked field by field so
// that an error names the field and the value, then merged over defaults.

import { InvalidArgumentError } from '../errors.js';
import { MAX_DEDUP_IDS } from '../engine/dedup.js';
import { DEFAULT_SETTINGS, OVERFLOW_POLICIES, type QueueSettings } from '../engine/types.js';
import type { QueueSettingsInput } from './types.js';

const DURABILITY_MODES: readonly unknown[] = ['fsync', 'os', 'memory'];

/**
 * Queue names follow RabbitMQ's rule, any UTF-8 text of 1 to 255 bytes,
 * so AMQP applications keep their names, with two exceptions: control
 * characters and bidirectional overrides (they garble or disguise logs
 * and terminals), and the names "." and ".." (no URL path segment can
 * address them: clients resolve them away).
 * Names only ever sit inside length-prefixed log records and JSON, never
 * in file paths; over HTTP they are percent-encoded path segments.
 */
export const MAX_QUEUE_NAME_BYTES = 255;
const FORBIDDEN_IN_NAMES = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\p{Cs}]/u;

/** A day: the longest lease, delay or backoff a caller may ask for. */
export const MAX_DURATION_MS = 24 * 60 * 60 * 1000;
/** Fourteen days, as SQS allows for retention. */
export const MAX_TTL_MS = 14 * MAX_DURATION_MS;

export function checkQueueName(name: unknown, field = 'queue'): string {
  if (
    typeof name !== 'string' ||
    name === '' ||
    name === '.' ||
    name === '..' ||
    FORBIDDEN_IN_NAMES.test(name) ||
    Buffer.byteLength(name) > MAX_QUEUE_NAME_BYTES
  ) {
    throw new InvalidArgumentError(
      field,
      `queue name ${JSON.stringify(name)} is invalid: use 1 to ` +
        `${MAX_QUEUE_NAME_BYTES} bytes of UTF-8 without control characters, ` +
        'other than "." and ".."',
    );
  }
  return name;
}

export function checkDuration(
  value: unknown,
  field: string,
  { min = 0, max = MAX_DURATION_MS } = {},
): number {
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value < min ||
    value > max
  ) {
    throw new InvalidArgumentError(
      field,
      `${field} must be an integer number of milliseconds from ${min} to ${max}, ` +
        `got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

export function checkInteger(
  value: unknown,
  field: string,
  min: number,
  max: number,
): number {
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value < min ||
    value > max
  ) {
    throw new InvalidArgumentError(
      field,
      `${field} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function checkNumber(value: unknown, field: string, min: number, max: number): number {
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < min ||
    value > max
  ) {
    throw new InvalidArgumentError(
      field,
      `${field} must be a number from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** Merges `input` over the defaults, refusing unknown or out-of-range fields. */
export function resolveSettings(name: string, input: QueueSettingsInput): QueueSettings {
  const known = new Set(Object.keys(DEFAULT_SETTINGS));
  for (const key of Object.keys(input)) {
    if (!known.has(key)) {
      throw new InvalidArgumentError(key, `unknown queue setting "${key}"`);
    }
  }

  const backoffInput = input.backoff ?? {};
  for (const key of Object.keys(backoffInput)) {
    if (!(key in DEFAULT_SETTINGS.backoff)) {
      throw new InvalidArgumentError(
        `backoff.${key}`,
        `unknown backoff setting "${key}"`,
      );
    }
  }
  const backoff = { ...DEFAULT_SETTINGS.backoff, ...backoffInput };
  const settings: QueueSettings = { ...DEFAULT_SETTINGS, ...input, backoff };

  if (typeof settings.fifo !== 'boolean') {
    throw new InvalidArgumentError(
      'fifo',
      `fifo must be true or false, got ${JSON.stringify(settings.fifo)}`,
    );
  }
  checkInteger(settings.maxAttempts, 'maxAttempts', 0, 1_000_000);
  checkDuration(backoff.initialMs, 'backoff.initialMs');
  checkNumber(backoff.multiplier, 'backoff.multiplier', 1, 100);
  checkDuration(backoff.maxMs, 'backoff.maxMs');
  checkNumber(backoff.jitter, 'backoff.jitter', 0, 1);
  checkDuration(settings.visibilityTimeoutMs, 'visibilityTimeoutMs', { min: 1 });
  if (settings.deadLetter !== null) {
    checkQueueName(settings.deadLetter, 'deadLetter');
    if (settings.deadLetter === name) {
      throw new InvalidArgumentError(
        'deadLetter',
        `queue "${name}" cannot be its own dead-letter queue`,
      );
    }
  }
  if (settings.messageTtlMs !== null) {
    checkDuration(settings.messageTtlMs, 'messageTtlMs', { min: 1, max: MAX_TTL_MS });
  }
  checkDuration(settings.dedupWindowMs, 'dedupWindowMs');
  checkInteger(settings.dedupMaxIds, 'dedupMaxIds', 1, MAX_DEDUP_IDS);
  if (!DURABILITY_MODES.includes(settings.durability)) {
    throw new InvalidArgumentError(
      'durability',
      `durability must be one of ${DURABILITY_MODES.join(', ')}, ` +
        `got ${JSON.stringify(settings.durability)}`,
    );
  }
  checkLimits(settings);
  return settings;
}

/** Largest maxLength / maxBytes: what a JS number counts exactly. */
const MAX_LIMIT = Number.MAX_SAFE_INTEGER;

function checkLimits(settings: QueueSettings): void {
  if (settings.maxLength !== null) checkInteger(settings.maxLength, 'maxLength', 0, MAX_LIMIT);
  if (settings.maxBytes !== null) checkInteger(settings.maxBytes, 'maxBytes', 0, MAX_LIMIT);
  if (!OVERFLOW_POLICIES.includes(settings.overflow)) {
    throw new InvalidArgumentError(
      'overflow',
      `overflow must be one of ${OVERFLOW_POLICIES.join(', ')}, ` +
        `got ${JSON.stringify(settings.overflow)}`,
    );
  }
  if (typeof settings.sheddable !== 'boolean') {
    throw new InvalidArgumentError(
      'sheddable',
      `sheddable must be true or false, got ${JSON.stringify(settings.sheddable)}`,
    );
  }
}

/** Names the first setting where `a` and `b` differ, or null when equal. */
export function settingsDifference(a: QueueSettings, b: QueueSettings): string | null {
  for (const key of Object.keys(a) as (keyof QueueSettings)[]) {
    const left = JSON.stringify(a[key]);
    const right = JSON.stringify(b[key]);
    if (left !== right) return `${key}: ${left} now, ${right} asked`;
  }
  return null;
}

/** Settings of a dead-letter queue made on demand: keep everything, forever. */
export const DEAD_LETTER_QUEUE_SETTINGS: QueueSettingsInput = {
  maxAttempts: 0,
  deadLetter: null,
  messageTtlMs: null,
};
