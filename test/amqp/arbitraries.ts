// fast-check generators for the AMQP codec tests: field values of every
// type, every method with random arguments, random property subsets.

import fc from 'fast-check';

import type { BasicProperties } from '../../src/amqp/content.js';
import type { FieldTable, FieldValue } from '../../src/amqp/field-table.js';
import { type ArgKind, METHOD_SPECS } from '../../src/amqp/method-table.js';
import {
  METHOD_NAMES,
  type Method,
  type MethodName,
} from '../../src/amqp/methods.js';

/** Well-formed text: 'binary' units never make a lone surrogate. */
export const text = fc.string({ unit: 'binary', maxLength: 16 });

/** Text of up to 255 UTF-8 bytes, sometimes exactly 255. */
export const shortstr = fc.oneof(
  { weight: 8, arbitrary: text },
  { weight: 1, arbitrary: fc.constant('q'.repeat(255)) },
  { weight: 1, arbitrary: fc.constant('é'.repeat(127) + 'x') },
);

export const bytes = fc
  .uint8Array({ maxLength: 24 })
  .map((a) => Buffer.from(a));

/** Bytes that are never UTF-8: 0xff appears in no UTF-8 sequence. */
const notUtf8 = fc
  .tuple(bytes, bytes)
  .map(([a, b]) => Buffer.concat([a, Buffer.from([0xff]), b]));

const INT64 = 2n ** 63n;

const scalar: fc.Arbitrary<FieldValue> = fc.oneof(
  fc.boolean().map((value) => ({ type: 't', value }) as const),
  fc
    .integer({ min: -128, max: 127 })
    .map((value) => ({ type: 'b', value }) as const),
  fc
    .integer({ min: 0, max: 255 })
    .map((value) => ({ type: 'B', value }) as const),
  fc
    .integer({ min: -32768, max: 32767 })
    .map((value) => ({ type: 's', value }) as const),
  fc
    .integer({ min: 0, max: 65535 })
    .map((value) => ({ type: 'u', value }) as const),
  fc.integer().map((value) => ({ type: 'I', value }) as const),
  fc
    .integer({ min: 0, max: 2 ** 32 - 1 })
    .map((value) => ({ type: 'i', value }) as const),
  fc
    .bigInt({ min: -INT64, max: INT64 - 1n })
    .map((value) => ({ type: 'l', value }) as const),
  fc
    .bigInt({ min: 0n, max: 2n ** 64n - 1n })
    .map((value) => ({ type: 'T', value }) as const),
  fc.float({ noNaN: true }).map((value) => ({ type: 'f', value }) as const),
  fc.double({ noNaN: true }).map((value) => ({ type: 'd', value }) as const),
  fc
    .record({
      scale: fc.integer({ min: 0, max: 255 }),
      value: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    })
    .map(({ scale, value }) => ({ type: 'D', scale, value }) as const),
  fc.oneof(text, notUtf8).map((value) => ({ type: 'S', value }) as const),
  bytes.map((value) => ({ type: 'x', value }) as const),
  fc.constant({ type: 'V', value: null } as const),
);

const nested = fc.letrec<{ value: FieldValue; table: FieldTable }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc
      .array(tie('value'), { maxLength: 4 })
      .map((value) => ({ type: 'A', value }) as const),
    tie('table').map((value) => ({ type: 'F', value }) as const),
  ),
  table: fc
    .uniqueArray(fc.tuple(shortstr, tie('value')), {
      selector: ([name]) => name,
      maxLength: 5,
    })
    .map((entries) => new Map(entries)),
}));

export const fieldValue: fc.Arbitrary<FieldValue> = nested.value;
export const fieldTable: fc.Arbitrary<FieldTable> = nested.table;

const ARG: Record<ArgKind, fc.Arbitrary<unknown>> = {
  octet: fc.integer({ min: 0, max: 255 }),
  short: fc.integer({ min: 0, max: 65535 }),
  long: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  longlong: fc.maxSafeNat(),
  shortstr,
  longstr: bytes,
  bit: fc.boolean(),
  table: fieldTable,
};

/** Random arguments for the method `name`. */
export function methodOf(name: MethodName): fc.Arbitrary<Method> {
  const model: Record<string, fc.Arbitrary<unknown>> = {
    name: fc.constant(name),
  };
  for (const [key, kind] of METHOD_SPECS[name].args) {
    if (!key.startsWith('_')) model[key] = ARG[kind];
  }
  return fc.record(model, {
    noNullPrototype: true,
  }) as unknown as fc.Arbitrary<Method>;
}

export const method: fc.Arbitrary<Method> = fc
  .constantFrom(...METHOD_NAMES)
  .chain(methodOf);

export const properties: fc.Arbitrary<BasicProperties> = fc.record(
  {
    contentType: shortstr,
    contentEncoding: shortstr,
    headers: fieldTable,
    deliveryMode: fc.integer({ min: 0, max: 255 }),
    priority: fc.integer({ min: 0, max: 255 }),
    correlationId: shortstr,
    replyTo: shortstr,
    expiration: shortstr,
    messageId: shortstr,
    timestamp: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    type: shortstr,
    userId: shortstr,
    appId: shortstr,
    clusterId: shortstr,
  },
  { requiredKeys: [], noNullPrototype: true },
);

/** Cut points for splitting a stream of `length` bytes. */
export function cuts(length: number): fc.Arbitrary<number[]> {
  return fc
    .uniqueArray(fc.integer({ min: 1, max: Math.max(1, length - 1) }), {
      maxLength: 8,
    })
    .map((points) => points.filter((p) => p < length).sort((a, b) => a - b));
}
