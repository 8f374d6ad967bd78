// The 406 a queue.declare gets when it asks a queue for settings other
// than it has, worded as RabbitMQ words it: the argument the client sent
// and both values in that argument's terms, e.g.
//
//   inequivalent arg 'x-message-ttl' for queue 'work' in vhost '/':
//   received '30000' but current is '60000'
//
// Usher compares settings, not argument tables (a redeclare that leaves
// an argument out keeps the queue's setting, README), so the setting
// that differs is translated back to the argument that sets it.

import type { QueueSettings } from '../engine/types.js';
import { REPLY } from './constants.js';
import { AmqpError } from './errors.js';
import { plainValue, type FieldTable } from './field-table.js';

type Key = keyof QueueSettings;
type BackoffKey = keyof QueueSettings['backoff'];

/** An argument and how a setting's value reads in its terms. */
interface ArgumentOf {
  name: string;
  /** The setting's value as that argument's value; undefined: none. */
  value(setting: unknown): unknown;
}

const AS_IS = (setting: unknown) => setting ?? undefined;

/** x-delivery-limit counts redeliveries; Usher counts deliveries (0 = unlimited). */
const DELIVERY_LIMIT: ArgumentOf = {
  name: 'x-delivery-limit',
  value: (attempts) => (attempts === 0 ? undefined : (attempts as number) - 1),
};

/** RabbitMQ's drop-head is Usher's drop-oldest. */
const OVERFLOW: ArgumentOf = {
  name: 'x-overflow',
  value: (policy) => (policy === 'drop-oldest' ? 'drop-head' : policy),
};

const BACKOFF_ARGUMENTS: Record<BackoffKey, string> = {
  initialMs: 'x-usher-backoff-initial',
  maxMs: 'x-usher-backoff-max',
  multiplier: 'x-usher-backoff-multiplier',
  jitter: 'x-usher-backoff-jitter',
};

/**
 * The argument that sets `key`. Where two arguments set the same setting
 * (x-delivery-limit or x-usher-max-attempts, x-overflow or
 * x-usher-overflow), the one the client sent.
 */
function argumentOf(key: Key, sent: FieldTable): ArgumentOf | undefined {
  switch (key) {
    case 'messageTtlMs':
      return { name: 'x-message-ttl', value: AS_IS };
    case 'maxLength':
      return { name: 'x-max-length', value: AS_IS };
    case 'maxBytes':
      return { name: 'x-max-length-bytes', value: AS_IS };
    case 'maxAttempts':
      return sent.has('x-usher-max-attempts')
        ? { name: 'x-usher-max-attempts', value: AS_IS }
        : DELIVERY_LIMIT;
    case 'overflow':
      return sent.has('x-usher-overflow') ? { ...OVERFLOW, name: 'x-usher-overflow' } : OVERFLOW;
    case 'fifo':
      return { name: 'x-usher-fifo', value: AS_IS };
    case 'sheddable':
      return { name: 'x-usher-sheddable', value: AS_IS };
    case 'visibilityTimeoutMs':
      return { name: 'x-usher-visibility-timeout', value: AS_IS };
    case 'dedupWindowMs':
      return { name: 'x-usher-dedup-window', value: AS_IS };
    default:
      // durability and deadLetter: no queue argument sets them.
      return undefined;
  }
}

/**
 * 406 naming the first argument whose setting in `asked` (the queue's
 * settings with the declare's arguments applied) differs from `current`.
 */
export function checkQueueEquivalent(
  queue: string,
  current: QueueSettings,
  asked: QueueSettings,
  sent: FieldTable,
): void {
  for (const key of Object.keys(current) as Key[]) {
    if (key === 'backoff') {
      for (const part of Object.keys(BACKOFF_ARGUMENTS) as BackoffKey[]) {
        const name = BACKOFF_ARGUMENTS[part];
        const argument = { name, value: AS_IS };
        compare(queue, argument, current.backoff[part], asked.backoff[part], sent);
      }
      continue;
    }
    const argument = argumentOf(key, sent);
    if (argument === undefined) {
      if (JSON.stringify(current[key]) !== JSON.stringify(asked[key])) {
        fail(queue, key, `'${String(asked[key])}'`, `'${String(current[key])}'`);
      }
      continue;
    }
    compare(queue, argument, current[key], asked[key], sent);
  }
}

function compare(
  queue: string,
  argument: ArgumentOf,
  current: unknown,
  asked: unknown,
  sent: FieldTable,
): void {
  if (JSON.stringify(current) === JSON.stringify(asked)) return;
  // What the client sent, as it sent it; none when a default it did not
  // name made the difference (x-max-length alone implies drop-head).
  const field = sent.get(argument.name);
  const received = field === undefined ? undefined : plainValue(field);
  fail(queue, argument.name, describe(received), describe(argument.value(current)));
}

function fail(queue: string, argument: string, received: string, current: string): never {
  throw inequivalentArg(queue, argument, received, current);
}

/**
 * RabbitMQ's 406 for a redeclare that asks for other arguments or flags,
 * in its words; `received` and `current` as it describes them (quoted,
 * `none`, or with their types).
 */
export function inequivalentArg(
  queue: string,
  argument: string,
  received: string,
  current: string,
): AmqpError {
  return new AmqpError(REPLY.PRECONDITION_FAILED, `inequivalent arg '${argument}' for queue ` +
    `'${queue}' in vhost '/': received ${received} but current is ${current}`);
}

function describe(value: unknown): string {
  return value === undefined || value === null ? 'none' : `'${String(value)}'`;
}
