// What exchange.declare checks before creating an exchange, or when the
// exchange exists already: the type is one we have, and a redeclaration
// asks for what is there. Messages are RabbitMQ's, e.g.
//
//   inequivalent arg 'durable' for exchange 'logs' in vhost '/':
//   received 'true' but current is 'false'

import { CommandInvalidError, PreconditionFailedError } from './errors.js';
import { EXCHANGE_TYPES, type Exchange, type ExchangeType } from './types.js';
import { type Table, describeValue, sameValue, typeName } from './values.js';

/** 503 unless `type` is one of EXCHANGE_TYPES. */
export function checkExchangeType(type: string): ExchangeType {
  if (!(EXCHANGE_TYPES as readonly string[]).includes(type)) {
    throw new CommandInvalidError(`unknown exchange type '${type}'`);
  }
  return type as ExchangeType;
}

/** 406 unless alternate-exchange, when given, names an exchange. */
export function checkNewArguments(args: Table, where: string): void {
  const alternate = args.get('alternate-exchange');
  if (alternate !== undefined && typeof alternate !== 'string') {
    throw new PreconditionFailedError(
      `invalid type '${typeName(alternate)}' for arg ` +
        `'alternate-exchange' in ${where}`,
    );
  }
}

/**
 * 406 naming the first setting in which `asked` differs from `current`,
 * in RabbitMQ's order: type, durable, auto_delete, internal, arguments.
 * `where` is "exchange 'logs' in vhost '/'".
 */
export function checkEquivalent(
  current: Exchange,
  asked: Omit<Exchange, 'name'>,
  where: string,
): void {
  checkField('type', asked.type, current.type, where);
  checkField('durable', asked.durable, current.durable, where);
  checkField('auto_delete', asked.autoDelete, current.autoDelete, where);
  checkField('internal', asked.internal, current.internal, where);
  checkArguments(asked.arguments, current.arguments, where);
}

function checkField(
  arg: string,
  received: unknown,
  current: unknown,
  where: string,
): void {
  if (received === current) return;
  throw new PreconditionFailedError(
    `inequivalent arg '${arg}' for ${where}: ` +
      `received '${String(received)}' but current is '${String(current)}'`,
  );
}

/**
 * Compares every argument, both ways. RabbitMQ compares only
 * alternate-exchange and lets other arguments differ silently; a client
 * redeclaring with other arguments more likely expects them to apply,
 * so we refuse instead. Values compare as in values.ts, and must also
 * be of the same type ('1' is not 1, 1 is not 1.5).
 */
function checkArguments(asked: Table, current: Table, where: string): void {
  const names = new Set([...current.keys(), ...asked.keys()]);
  for (const name of [...names].sort()) {
    const has = current.has(name);
    const got = asked.has(name);
    const was = current.get(name);
    const now = asked.get(name);
    const same =
      has === got && typeName(was) === typeName(now) && sameValue(was, now);
    if (same) continue;
    throw new PreconditionFailedError(
      `inequivalent arg '${name}' for ${where}: ` +
        `received ${describeValue(now, got)} ` +
        `but current is ${describeValue(was, has)}`,
    );
  }
}
