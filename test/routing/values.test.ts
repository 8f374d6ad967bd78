// Field values: importing callers' tables, the snapshot encoding, and
// binding identity keys.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { PreconditionFailedError } from '../../src/routing/errors.js';
import {
  decodeTable,
  describeValue,
  encodeTable,
  importTable,
  sameTable,
  sameValue,
  tableKey,
} from '../../src/routing/values.js';

describe('importTable', () => {
  it('copies into Maps, Buffers and bigint seconds', () => {
    const bytes = new Uint8Array([1, 2]);
    const table = importTable(
      {
        a: { b: [1, { c: 'x' }] },
        d: new Date(1_700_000_000_999),
        e: bytes,
        f: undefined,
      },
      'test',
    );
    assert.deepEqual(table.get('a'), new Map([['b', [1, new Map([['c', 'x']])]]]));
    assert.equal(table.get('d'), 1_700_000_000n);
    assert.ok(Buffer.isBuffer(table.get('e')));
    bytes[0] = 9;
    assert.deepEqual([...(table.get('e') as Buffer)], [1, 2]);
    assert.equal(table.get('f'), null);
  });

  it('refuses values it cannot compare or store', () => {
    const bads = [() => 1, Symbol('s'), new Date(Number.NaN), new Set([1]), /re/];
    for (const bad of bads) {
      assert.throws(() => importTable({ bad }, 'test'), PreconditionFailedError);
    }
    assert.throws(() => importTable([] as never, 'test'), /must be a field table/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => importTable(cyclic, 'test'), /nests deeper than 32 levels/);
  });
});

describe('sameValue', () => {
  it('holds null and undefined both void, and nothing else', () => {
    assert.equal(sameValue(null, undefined), true);
    assert.equal(sameValue(null, 0), false);
    assert.equal(sameValue(undefined, ''), false);
  });

  it('compares tables by keys, not by size alone', () => {
    assert.equal(sameTable({ a: 1 }, { b: 1 }), false);
    assert.equal(sameTable({ a: 1 }, { a: 1, b: 1 }), false);
    assert.equal(sameTable(new Map([['a', [1, 2]]]), { a: [1, 2] }), true);
    assert.equal(sameValue('a', 'b'), false);
    assert.equal(sameValue('a', 1), false);
  });
});

describe('describeValue', () => {
  it('says what RabbitMQ says', () => {
    assert.equal(describeValue('x'), "the value 'x' of type 'string'");
    assert.equal(describeValue(5n), "the value '5' of type 'integer'");
    assert.equal(describeValue(1.5), "the value '1.5' of type 'float'");
    assert.equal(describeValue(Buffer.from('ab')),
      "the value '<2 bytes>' of type 'bytes'");
    assert.equal(describeValue([1, 'a']), `the value '[1,"a"]' of type 'array'`);
    assert.equal(describeValue(undefined, false), 'none');
  });
});

describe('snapshot encoding', () => {
  const leaf = fc.oneof(
    fc.string(),
    fc.double(),
    fc.bigInt(),
    fc.boolean(),
    fc.constant(null),
    fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a)),
  );
  const value = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('table')),
    array: fc.array(tie('value'), { maxLength: 3 }),
    table: fc.dictionary(fc.string(), tie('value'), { maxKeys: 3 }),
  })).value;

  it('round-trips every value through JSON text', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), value, { maxKeys: 5 }), (record) => {
        const table = importTable(record, 'test');
        const text = JSON.stringify(encodeTable(table));
        const back = decodeTable(JSON.parse(text), 'arguments');
        assert.ok(sameTable(back, table) || hasNaN(table));
        assert.equal(tableKey(back), tableKey(table));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses what it did not write', () => {
    assert.throws(() => decodeTable([], 'a'), /a is not an object/);
    const bad = /a\.n is not an encoded field value/;
    assert.throws(() => decodeTable({ n: { $bytes: 1 } }, 'a'), bad);
    assert.throws(() => decodeTable({ n: { $float: '1' } }, 'a'), bad);
    assert.throws(() => decodeTable({ n: { $table: {}, x: 1 } }, 'a'), bad);
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    assert.throws(() => decodeTable({ deep }, 'a'), /is not an encoded field value/);
  });

  it('keeps a key named __proto__', () => {
    const table = importTable(new Map([['__proto__', 1]]), 'test');
    const back = decodeTable(JSON.parse(JSON.stringify(encodeTable(table))), 'a');
    assert.deepEqual([...back], [['__proto__', 1]]);
  });

  it('keys tables the same in any order, and apart by type', () => {
    const a = importTable({ x: 1, y: 'b' }, 't');
    const b = importTable(new Map<string, unknown>([['y', 'b'], ['x', 1]]), 't');
    assert.equal(tableKey(a), tableKey(b));
    assert.notEqual(tableKey(a), tableKey(importTable({ x: 1n, y: 'b' }, 't')));
    assert.notEqual(tableKey(a), tableKey(importTable({ x: '1', y: 'b' }, 't')));
    assert.equal(tableKey(importTable({}, 't')), '');
  });
});

/** NaN equals nothing, itself included, as in RabbitMQ's comparison. */
function hasNaN(v: unknown): boolean {
  if (typeof v === 'number') return Number.isNaN(v);
  if (Array.isArray(v)) return v.some(hasNaN);
  if (v instanceof Map) return [...v.values()].some(hasNaN);
  return false;
}
