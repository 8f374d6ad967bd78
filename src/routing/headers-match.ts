// Headers exchange matching, as RabbitMQ does it
// (rabbit_exchange_type_headers): a binding's arguments are the pattern,
// the message's headers the data, and `x-match` says how to combine.
//
//   x-match      compares                         matches when
//   all          arguments not starting 'x-'      every one matches
//   any          arguments not starting 'x-'      at least one matches
//   all-with-x   every argument but x-match       every one matches
//   any-with-x   every argument but x-match       at least one matches
//
// x-match missing means all. An argument matches when the header of
// that name is present and equal by sameValue (values.ts); a void
// argument (null) matches the header's presence whatever its value.
// So `all` with nothing to compare matches every message, `any` none.

import { PreconditionFailedError } from './errors.js';
import {
  type Table,
  type TableInput,
  sameValue,
  tableGet,
  tableHas,
} from './values.js';

const MODES = ['all', 'any', 'all-with-x', 'any-with-x'] as const;

/** A binding's arguments, read once at bind time. */
export interface HeadersPattern {
  readonly any: boolean;
  readonly names: readonly string[];
  readonly values: readonly unknown[];
  /** True where the argument is void: presence is enough. */
  readonly presence: readonly boolean[];
}

/**
 * Reads a headers binding's arguments; 406 when x-match is not one of
 * the four modes. `owner` names the binding for the message.
 */
export function compileHeadersPattern(
  args: Table,
  owner: string,
): HeadersPattern {
  const mode = args.get('x-match') ?? 'all';
  if (typeof mode !== 'string') {
    throw new PreconditionFailedError(
      `invalid x-match field type for ${owner}: ${String(mode)} is not ` +
        'a string; expected all, any, all-with-x, or any-with-x',
    );
  }
  if (!(MODES as readonly string[]).includes(mode)) {
    throw new PreconditionFailedError(
      `invalid x-match field value '${mode}' for ${owner}; ` +
        'expected all, any, all-with-x, or any-with-x',
    );
  }

  const withX = mode.endsWith('-with-x');
  const names: string[] = [];
  const values: unknown[] = [];
  const presence: boolean[] = [];
  for (const [name, value] of args) {
    if (name === 'x-match' || (!withX && name.startsWith('x-'))) continue;
    names.push(name);
    values.push(value);
    presence.push(value === null || value === undefined);
  }
  return { any: mode.startsWith('any'), names, values, presence };
}

/** Whether a message with `headers` matches the binding's pattern. */
export function headersMatch(
  pattern: HeadersPattern,
  headers: TableInput,
): boolean {
  const { any, names, values, presence } = pattern;
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const matched =
      tableHas(headers, name) &&
      (presence[i] || sameValue(values[i], tableGet(headers, name)));
    // A miss settles `all`, a hit settles `any`.
    if (matched === any) return any;
  }
  return !any;
}
