// The consumer argument x-priority, RabbitMQ's consumer priorities: while
// consumers of a queue with a higher priority have room under their
// prefetch, those with a lower one get nothing; consumers of one priority
// take turns as before (the broker's Consumers.serveByPriority).

import { preconditionFailed } from './errors.js';
import type { FieldTable, FieldType } from './field-table.js';

const INTEGER_TYPES = new Set<FieldType>(['b', 'B', 's', 'u', 'I', 'i', 'l']);

/** The names RabbitMQ gives the other types when it refuses one. */
const TYPE_NAMES: Partial<Record<FieldType, string>> = {
  t: 'bool', f: 'float', d: 'double', D: 'decimal', S: 'longstr', x: 'binary',
  A: 'array', F: 'table', T: 'timestamp', V: 'void',
};

/** A consumer's priority from basic.consume's arguments: 0 when not given. */
export function consumerPriority(args: FieldTable, queue: string): number {
  const field = args.get('x-priority');
  if (field === undefined) return 0;
  if (!INTEGER_TYPES.has(field.type)) {
    throw preconditionFailed(`invalid arg 'x-priority' for queue '${queue}' in vhost '/': ` +
      `"expected integer, got ${TYPE_NAMES[field.type] ?? field.type}"`);
  }
  // A long beyond 2^53 loses digits, not its order against the others.
  return Number(field.value);
}
