// Headers exchange matching: the four x-match modes, x- arguments,
// presence-only (void) arguments, and how typed values compare.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  compileHeadersPattern,
  headersMatch,
} from '../../src/routing/headers-match.js';
import {
  type TableInput,
  importTable,
  sameValue,
} from '../../src/routing/values.js';
import { assertRefused, sorted, tableWith } from './helpers.js';

function matches(args: TableInput, headers: TableInput): boolean {
  const pattern = compileHeadersPattern(importTable(args, 'test'), 'test');
  return headersMatch(pattern, headers);
}

describe('x-match all and any', () => {
  const all = { 'x-match': 'all', format: 'pdf', type: 'report' };
  const any = { 'x-match': 'any', format: 'pdf', type: 'report' };

  it('all needs every argument matched; extra headers do not count', () => {
    assert.equal(matches(all, { format: 'pdf', type: 'report' }), true);
    assert.equal(matches(all, { format: 'pdf', type: 'report', x: 1 }), true);
    assert.equal(matches(all, { format: 'pdf' }), false);
    assert.equal(matches(all, { format: 'pdf', type: 'log' }), false);
    assert.equal(matches(all, {}), false);
  });

  it('any needs one argument matched', () => {
    assert.equal(matches(any, { format: 'pdf' }), true);
    assert.equal(matches(any, { type: 'report', format: 'zip' }), true);
    assert.equal(matches(any, { format: 'zip' }), false);
    assert.equal(matches(any, {}), false);
  });

  it('without x-match means all', () => {
    const args = { format: 'pdf', type: 'report' };
    assert.equal(matches(args, { format: 'pdf', type: 'report' }), true);
    assert.equal(matches(args, { format: 'pdf' }), false);
  });

  it('all with nothing to compare matches every message, any none', () => {
    assert.equal(matches({}, {}), true);
    assert.equal(matches({ 'x-match': 'all' }, { a: 1 }), true);
    assert.equal(matches({ 'x-match': 'any' }, { a: 1 }), false);
  });

  it('takes headers as a Map or a null-prototype record', () => {
    const map = new Map([['format', 'pdf'], ['type', 'report']]);
    assert.equal(matches(all, map), true);
    // plainTable() in the codec gives these, so "__proto__" is a key.
    const record: Record<string, unknown> = Object.create(null);
    record.format = 'pdf';
    record['__proto__'] = 'report';
    assert.equal(matches({ format: 'pdf', ['__proto__']: 'report' }, record), true);
    assert.equal(matches({ ['__proto__']: 'other' }, record), false);
    assert.equal(matches({ ['__proto__']: 'report' }, { format: 'pdf' }), false);
  });
});

describe('x- arguments', () => {
  it('are ignored by all and any', () => {
    const args = { 'x-match': 'all', 'x-tenant': 't1', kind: 'a' };
    assert.equal(matches(args, { kind: 'a' }), true);
    const onlyX = { 'x-match': 'any', 'x-tenant': 't1' };
    assert.equal(matches(onlyX, { 'x-tenant': 't1' }), false);
  });

  it('count with all-with-x and any-with-x; x-match itself never does', () => {
    const all = { 'x-match': 'all-with-x', 'x-tenant': 't1', kind: 'a' };
    assert.equal(matches(all, { kind: 'a' }), false);
    assert.equal(matches(all, { kind: 'a', 'x-tenant': 't1' }), true);
    assert.equal(matches(all, { kind: 'a', 'x-tenant': 't2' }), false);

    const any = { 'x-match': 'any-with-x', 'x-tenant': 't1' };
    assert.equal(matches(any, { 'x-tenant': 't1' }), true);
    assert.equal(matches(any, { 'x-tenant': 't2' }), false);
    assert.equal(matches({ 'x-match': 'all-with-x' }, { 'x-match': 'any' }), true);
  });
});

describe('void arguments and missing headers', () => {
  it('a void argument matches the header being there, whatever its value', () => {
    for (const empty of [null, undefined]) {
      const args = { 'x-match': 'all', trace: empty };
      assert.equal(matches(args, { trace: 'abc' }), true);
      assert.equal(matches(args, { trace: 0 }), true);
      assert.equal(matches(args, { trace: null }), true);
      assert.equal(matches(args, {}), false);
    }
  });

  it('a void header does not equal a value', () => {
    assert.equal(matches({ a: 'x' }, { a: null }), false);
    const any = { 'x-match': 'any', a: 'x', b: 1 };
    assert.equal(matches(any, { a: null, b: 1 }), true);
  });
});

describe('typed values', () => {
  it('compares integers by value across widths', () => {
    assert.equal(matches({ n: 1 }, { n: 1n }), true);
    assert.equal(matches({ n: 2n ** 40n }, { n: 2 ** 40 }), true);
    assert.equal(matches({ n: 1 }, { n: 2 }), false);
    assert.equal(matches({ n: 1.5 }, { n: 1.5 }), true);
    assert.equal(matches({ n: 1 }, { n: 1.5 }), false);
  });

  it('keeps strings, numbers and booleans apart', () => {
    assert.equal(matches({ n: 1 }, { n: '1' }), false);
    assert.equal(matches({ n: '1' }, { n: 1 }), false);
    assert.equal(matches({ b: true }, { b: 'true' }), false);
    assert.equal(matches({ b: true }, { b: 1 }), false);
    assert.equal(matches({ b: true }, { b: true }), true);
    assert.equal(matches({ b: false }, { b: true }), false);
  });

  it('treats text and bytes with the same UTF-8 content as equal', () => {
    assert.equal(matches({ s: 'é' }, { s: Buffer.from('é') }), true);
    const ff = Buffer.from([0xff]);
    assert.equal(matches({ s: ff }, { s: Buffer.from([0xff]) }), true);
    assert.equal(matches({ s: 'a' }, { s: Buffer.from('b') }), false);
    assert.equal(matches({ s: 'a' }, { s: new Uint8Array([0x61]) }), true);
  });

  it('compares a Date as its whole seconds', () => {
    const at = new Date(1_700_000_000_900);
    assert.equal(matches({ t: 1_700_000_000n }, { t: at }), true);
    assert.equal(matches({ t: at }, { t: 1_700_000_000n }), true);
    assert.equal(matches({ t: 1_700_000_001n }, { t: at }), false);
  });

  it('compares arrays and tables element by element', () => {
    assert.equal(matches({ a: [1, 'x'] }, { a: [1n, 'x'] }), true);
    assert.equal(matches({ a: [1, 'x'] }, { a: ['x', 1] }), false);
    assert.equal(matches({ a: [1] }, { a: [1, 1] }), false);
    const map = new Map<string, unknown>([['j', 'v'], ['k', 1n]]);
    assert.equal(matches({ t: { k: 1, j: 'v' } }, { t: map }), true);
    assert.equal(matches({ t: { k: 1 } }, { t: { k: 1, j: 2 } }), false);
    assert.equal(matches({ t: { k: 1 } }, { t: [1] }), false);
  });

  it('sameValue never equates objects it does not know', () => {
    class Point {
      x = 1;
    }
    assert.equal(sameValue(new Point(), new Point()), false);
    assert.equal(sameValue(Symbol.for('a'), 'a'), false);
    assert.equal(sameValue(Number.NaN, Number.NaN), false);
  });
});

describe('headers bindings in an exchange', () => {
  it('routes by headers and ignores the routing key', () => {
    const { table } = tableWith('pdfs', 'reports', 'all');
    table.declare({ name: 'docs', type: 'headers' });
    table.bind({ source: 'docs', destination: 'pdfs', destinationKind: 'queue',
      arguments: { 'x-match': 'all', format: 'pdf' } });
    table.bind({ source: 'docs', destination: 'reports', destinationKind: 'queue',
      routingKey: 'ignored',
      arguments: { 'x-match': 'any', type: 'report', kind: 'report' } });
    table.bind({ source: 'amq.match', destination: 'all', destinationKind: 'queue' });

    const both = { format: 'pdf', type: 'report' };
    assert.deepEqual(sorted(table.route('docs', 'x', both)), ['pdfs', 'reports']);
    assert.deepEqual(sorted(table.route('docs', '', { format: 'pdf' })), ['pdfs']);
    assert.deepEqual(sorted(table.route('docs', 'ignored')), []);
    assert.deepEqual(sorted(table.route('amq.match', 'any', { a: 1 })), ['all']);
  });

  it('refuses an x-match that is not one of the four modes (406)', () => {
    const { table } = tableWith('q');
    table.declare({ name: 'docs', type: 'headers' });
    assertRefused(
      () => table.bind({ source: 'docs', destination: 'q', destinationKind: 'queue',
        arguments: { 'x-match': 'some' } }),
      406,
      "PRECONDITION_FAILED - invalid x-match field value 'some' for binding of " +
        "queue 'q' to exchange 'docs' in vhost '/'; expected all, any, " +
        'all-with-x, or any-with-x',
    );
    assertRefused(
      () => table.bind({ source: 'docs', destination: 'q', destinationKind: 'queue',
        arguments: { 'x-match': 1 } }),
      406,
      "PRECONDITION_FAILED - invalid x-match field type for binding of queue 'q' " +
        "to exchange 'docs' in vhost '/': 1 is not a string; expected all, any, " +
        'all-with-x, or any-with-x',
    );
    assert.deepEqual(table.bindings(), []);
  });

  it('takes any x-match on other exchange types, where it means nothing', () => {
    const { table } = tableWith('q');
    const odd = { 'x-match': 'some' };
    assert.equal(table.bind({ source: 'amq.direct', destination: 'q',
      destinationKind: 'queue', routingKey: 'k', arguments: odd }), true);
  });
});
