// RabbitMQ's storage and placement hints as a queue was declared with
// them, and the 406 a redeclare gets when it asks for others. Usher keeps
// every queue one way, so the hints change nothing (mapping.ts checkHint),
// but RabbitMQ 3.10 compares some of them on a redeclare, and which ones
// depends on the queue's type (its queue_arguments):
//
//   classic  x-queue-mode, x-queue-version, x-queue-type,
//            x-queue-master-locator
//   quorum   x-dead-letter-strategy, x-max-in-memory-length,
//            x-max-in-memory-bytes, x-queue-type,
//            x-quorum-initial-group-size, x-queue-leader-locator
//
// One left out is compared as none, whichever declare left it out, and
// x-queue-type 'classic' is none. The other type's hints are not compared
// at all: a classic queue's redeclare may name x-queue-leader-locator.
// test/amqp/compat checks both brokers agree.

import { type FieldTable, type FieldType, plainValue } from './field-table.js';
import { inequivalentArg } from './queue-equivalence.js';

/** A hint as it was sent: its wire type and value, as JSON keeps them. */
export interface Hint {
  readonly type: FieldType;
  readonly value: string | number;
}

/** The hints a queue was declared with, by argument name. */
export type QueueHints = Readonly<Record<string, Hint>>;

/** What a redeclare is compared on, in RabbitMQ's order, by type. */
const COMPARED = {
  classic: ['x-queue-mode', 'x-queue-version', 'x-queue-type', 'x-queue-master-locator'],
  quorum: [
    'x-dead-letter-strategy',
    'x-max-in-memory-length',
    'x-max-in-memory-bytes',
    'x-queue-type',
    'x-quorum-initial-group-size',
    'x-queue-leader-locator',
  ],
} as const;

/** Every argument kept as a hint, whatever the queue's type. */
const HINT_ARGUMENTS: readonly string[] = [...new Set([...COMPARED.classic, ...COMPARED.quorum])];

/**
 * The hints among a declare's arguments, already checked by
 * settingsFromArguments; undefined when it has none.
 */
export function hintsFromArguments(args: FieldTable): QueueHints | undefined {
  let hints: Record<string, Hint> | undefined;
  for (const name of HINT_ARGUMENTS) {
    const field = args.get(name);
    if (field === undefined) continue;
    // Checked as text or as an integer up to 2^53 - 1 (mapping.ts).
    const value = plainValue(field);
    (hints ??= {})[name] = {
      type: field.type,
      value: typeof value === 'bigint' ? Number(value) : (value as string | number),
    };
  }
  return hints;
}

/**
 * 406 naming the first hint that a redeclare (`asked`) gives otherwise
 * than the queue's declare did (`current`), among those RabbitMQ compares
 * for the queue's type; worded as RabbitMQ words it.
 */
export function checkHintsEquivalent(
  queue: string,
  current: QueueHints | undefined,
  asked: QueueHints | undefined,
): void {
  const quorum = current?.['x-queue-type']?.value === 'quorum';
  for (const name of quorum ? COMPARED.quorum : COMPARED.classic) {
    const was = current?.[name];
    const now = asked?.[name];
    if (was !== undefined && now !== undefined) {
      if (classOf(was.type) === classOf(now.type) && was.value === now.value) continue;
      throw inequivalentArg(queue, name, `'${now.value}'`, `'${was.value}'`);
    }
    const given = was ?? now;
    if (given === undefined || isClassicType(name, given)) continue;
    throw inequivalentArg(queue, name, describe(now), describe(was));
  }
}

/** x-queue-type 'classic' on one side only is no difference (RabbitMQ). */
function isClassicType(name: string, hint: Hint): boolean {
  return name === 'x-queue-type' && hint.type === 'S' && hint.value === 'classic';
}

const INTEGER_TYPES: ReadonlySet<FieldType> = new Set(['b', 'B', 's', 'u', 'I', 'i', 'l']);

/** RabbitMQ compares integers of any width as one type, floats as another. */
function classOf(type: FieldType): string {
  if (INTEGER_TYPES.has(type)) return 'int';
  if (type === 'f' || type === 'd') return 'float';
  return type;
}

/** RabbitMQ's name of each field type, for its wording of a refusal. */
const TYPE_NAMES: Record<FieldType, string> = {
  t: 'bool', b: 'byte', B: 'unsignedbyte', s: 'short', u: 'unsignedshort',
  I: 'signedint', i: 'unsignedint', l: 'long', f: 'float', d: 'double',
  D: 'decimal', S: 'longstr', x: 'binary', T: 'timestamp', A: 'array',
  F: 'table', V: 'void',
};

function describe(hint: Hint | undefined): string {
  return hint === undefined
    ? 'none'
    : `the value '${hint.value}' of type '${TYPE_NAMES[hint.type]}'`;
}

