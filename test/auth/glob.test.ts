// The permission pattern matcher, against a regular expression built from
// the same pattern as the reference, on fixed cases and random ones.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { anyGlobMatches, globMatch } from '../../src/auth/glob.js';

function reference(pattern: string, name: string): boolean {
  const source = [...pattern]
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`, 's').test(name);
}

describe('globMatch', () => {
  it('matches the patterns the docs use', () => {
    assert.equal(globMatch('orders.*', 'orders.paid'), true);
    assert.equal(globMatch('orders.*', 'orders.eu.paid'), true);
    assert.equal(globMatch('orders.*', 'orders.'), true);
    assert.equal(globMatch('orders.*', 'orders'), false);
    assert.equal(globMatch('orders.*', 'payments.orders.x'), false);
    assert.equal(globMatch('*', ''), true);
    assert.equal(globMatch('*', 'anything'), true);
    assert.equal(globMatch('', ''), true);
    assert.equal(globMatch('', 'a'), false);
    assert.equal(globMatch('a?c', 'abc'), true);
    assert.equal(globMatch('a?c', 'ac'), false);
    assert.equal(globMatch('*.dlq', 'orders.dlq'), true);
    assert.equal(globMatch('*.dlq', 'orders.dlq.x'), false);
    assert.equal(globMatch('a*b*c', 'aXbYbZc'), true);
    assert.equal(globMatch('a*b*c', 'aXbYbZ'), false);
  });

  it('takes linear-ish time on patterns that make backtracking regexes explode', () => {
    const name = 'a'.repeat(200);
    const pattern = `${'*a'.repeat(40)}b`;
    const started = process.hrtime.bigint();
    assert.equal(globMatch(pattern, name), false);
    // Bounded loosely: exponential backtracking would take years.
    assert.ok(process.hrtime.bigint() - started < 2_000_000_000n);
  });

  it('agrees with a regular expression on random patterns and names', () => {
    const alphabet = fc.constantFrom('a', 'b', '.', '*', '?');
    const letters = fc.constantFrom('a', 'b', '.');
    fc.assert(
      fc.property(
        fc.array(alphabet, { maxLength: 8 }).map((cs) => cs.join('')),
        fc.array(letters, { maxLength: 10 }).map((cs) => cs.join('')),
        (pattern, name) => globMatch(pattern, name) === reference(pattern, name),
      ),
      { numRuns: 3000 },
    );
  });

  it('anyGlobMatches is true when one pattern matches', () => {
    assert.equal(anyGlobMatches(['x', 'orders.*'], 'orders.a'), true);
    assert.equal(anyGlobMatches([], 'orders.a'), false);
  });
});
