// Topic matching: RabbitMQ's tutorial 5, the edge cases of empty words
// and '#', removal, a pattern that would take forever without the '#'
// memo, and the trie against a plain recursive matcher on random input.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import {
  TopicTrie,
  normaliseKey,
  splitTopicKey,
} from '../../src/routing/topic-trie.js';

/** Values of every key in `keys` matching `routingKey`, deduplicated. */
function matches(keys: string[], routingKey: string): string[] {
  const trie = new TopicTrie<string>();
  for (const key of keys) trie.add(key, key);
  const out: string[] = [];
  trie.match(routingKey, out);
  return [...new Set(out)].sort();
}

function matchesOne(key: string, routingKey: string): boolean {
  return matches([key], routingKey).length === 1;
}

/** The definition, word by word, with no index and no memo. */
function reference(pattern: string[], words: string[]): boolean {
  if (pattern.length === 0) return words.length === 0;
  const [head, ...rest] = pattern;
  if (head === '#') {
    for (let i = 0; i <= words.length; i++) {
      if (reference(rest, words.slice(i))) return true;
    }
    return false;
  }
  if (words.length === 0) return false;
  return (head === '*' || head === words[0]) && reference(rest, words.slice(1));
}

function referenceMatch(pattern: string, key: string): boolean {
  const split = (s: string) => (s === '' ? [] : s.split('.'));
  return reference(split(pattern), split(key));
}

describe('topic matching: RabbitMQ tutorial 5', () => {
  const q1 = ['*.orange.*'];
  const q2 = ['*.*.rabbit', 'lazy.#'];
  const cases: [string, boolean, boolean][] = [
    ['quick.orange.rabbit', true, true],
    ['lazy.orange.elephant', true, true],
    ['quick.orange.fox', true, false],
    ['lazy.brown.fox', false, true],
    ['lazy.pink.rabbit', false, true],
    ['quick.brown.fox', false, false],
    ['orange', false, false],
    ['quick.orange.male.rabbit', false, false],
    ['lazy.orange.male.rabbit', false, true],
  ];

  for (const [key, toQ1, toQ2] of cases) {
    it(`${key}: Q1 ${toQ1}, Q2 ${toQ2}`, () => {
      assert.equal(matches(q1, key).length > 0, toQ1);
      assert.equal(matches(q2, key).length > 0, toQ2);
    });
  }

  it('lazy.pink.rabbit matches both of Q2 bindings', () => {
    assert.deepEqual(matches(q2, 'lazy.pink.rabbit'), ['*.*.rabbit', 'lazy.#']);
  });
});

describe('topic matching: edge cases', () => {
  it('splits the empty key into no words, "." into two empty ones', () => {
    assert.deepEqual(splitTopicKey(''), []);
    assert.deepEqual(splitTopicKey('.'), ['', '']);
    assert.deepEqual(splitTopicKey('a..b'), ['a', '', 'b']);
    assert.deepEqual(splitTopicKey('a.'), ['a', '']);
  });

  it('# alone matches every key, the empty one too', () => {
    for (const key of ['', 'a', 'a.b.c', '.', 'a..b', '#', '*']) {
      assert.equal(matchesOne('#', key), true, key);
    }
  });

  it('#.# matches what # matches', () => {
    for (const key of ['', 'a', 'a.b.c', '.', 'a..b']) {
      assert.equal(matchesOne('#.#', key), true, key);
    }
  });

  it('# at either end takes zero words too', () => {
    assert.equal(matchesOne('a.#', 'a'), true);
    assert.equal(matchesOne('a.#', 'a.b.c'), true);
    assert.equal(matchesOne('a.#', 'b.a'), false);
    assert.equal(matchesOne('#.a', 'a'), true);
    assert.equal(matchesOne('#.a', 'x.y.a'), true);
    assert.equal(matchesOne('#.a', 'a.x'), false);
    assert.equal(matchesOne('a.#.b', 'a.b'), true);
    assert.equal(matchesOne('a.#.b', 'a.x.y.b'), true);
    assert.equal(matchesOne('a.#.b', 'a.x.y'), false);
  });

  it('* takes exactly one word, which may be empty', () => {
    assert.equal(matchesOne('*', 'a'), true);
    assert.equal(matchesOne('*', ''), false);
    assert.equal(matchesOne('*', '.'), false);
    assert.equal(matchesOne('*.*', '.'), true);
    assert.equal(matchesOne('a.*', 'a.'), true);
    assert.equal(matchesOne('a.*', 'a'), false);
    assert.equal(matchesOne('*.a', '.a'), true);
    assert.equal(matchesOne('a.*.b', 'a..b'), true);
    assert.equal(matchesOne('a.*.b', 'a.b'), false);
  });

  it('empty words in a binding key are literal words', () => {
    assert.equal(matchesOne('a..b', 'a..b'), true);
    assert.equal(matchesOne('a..b', 'a.x.b'), false);
    assert.equal(matchesOne('a..b', 'a.b'), false);
  });

  it('the empty binding key matches only the empty routing key', () => {
    assert.equal(matchesOne('', ''), true);
    assert.equal(matchesOne('', 'a'), false);
    assert.equal(matchesOne('', '.'), false);
  });

  it('* and # are wildcards only as whole words', () => {
    assert.equal(matchesOne('a*', 'a*'), true);
    assert.equal(matchesOne('a*', 'ab'), false);
    assert.equal(matchesOne('a#', 'a.b'), false);
  });

  it('needs as many words as a run of wildcards has stars', () => {
    assert.equal(matchesOne('#.*', ''), false);
    assert.equal(matchesOne('#.*', 'a'), true);
    assert.equal(matchesOne('*.#.*', 'a'), false);
    assert.equal(matchesOne('*.#.*', 'a.b'), true);
    assert.equal(matchesOne('*.#.*', 'a.b.c.d'), true);
  });

  it('normalises wildcard runs to stars then one #', () => {
    assert.deepEqual(normaliseKey('#.*.#'), ['*', '#']);
    assert.deepEqual(normaliseKey('*.#.*'), ['*', '*', '#']);
    assert.deepEqual(normaliseKey('a.#.#.b.*'), ['a', '#', 'b', '*']);
    assert.deepEqual(normaliseKey(''), []);
  });
});

describe('TopicTrie', () => {
  it('adds a pair once and removes it once', () => {
    const trie = new TopicTrie<number>();
    assert.equal(trie.add('a.*', 1), true);
    assert.equal(trie.add('a.*', 1), false);
    assert.equal(trie.add('a.*', 2), true);
    assert.equal(trie.size, 2);

    assert.equal(trie.remove('a.*', 1), true);
    assert.equal(trie.remove('a.*', 1), false);
    assert.equal(trie.remove('b.*', 2), false);
    const out: number[] = [];
    trie.match('a.x', out);
    assert.deepEqual(out, [2]);
  });

  it('finds nothing once every key is removed', () => {
    const trie = new TopicTrie<string>();
    const keys = ['a.#', '#.b', 'a.*.b', '*', '#'];
    for (const key of keys) trie.add(key, key);
    for (const key of keys) assert.equal(trie.remove(key, key), true);
    assert.equal(trie.size, 0);
    const out: string[] = [];
    trie.match('a.x.b', out);
    assert.deepEqual(out, []);
  });

  it('keys written differently but equal after normalising share a node', () => {
    const trie = new TopicTrie<string>();
    trie.add('#.*', 'v');
    assert.equal(trie.add('*.#', 'v'), false);
    assert.equal(trie.remove('*.#', 'v'), true);
    assert.equal(trie.size, 0);
  });

  it('stays fast where every split of the key could be tried', {
    timeout: 5000,
  }, () => {
    // Without the '#' memo this walk tries about C(200, 5) splits.
    const trie = new TopicTrie<string>();
    trie.add('#.a.#.a.#.a.#.a.#.a.#.b', 'never');
    trie.add('#.a.#.a.#.a.#.a.#.a.#', 'always');
    const out: string[] = [];
    trie.match(Array(200).fill('a').join('.'), out);
    assert.deepEqual(out, ['always']);
  });
});

describe('TopicTrie against the reference matcher', () => {
  const word = fc.constantFrom('a', 'b', '', '*', '#');
  const pattern = fc.array(word, { maxLength: 6 }).map((w) => w.join('.'));
  const key = fc
    .array(fc.constantFrom('a', 'b', ''), { maxLength: 7 })
    .map((w) => w.join('.'));

  it('matches what the definition matches', () => {
    fc.assert(
      fc.property(
        fc.array(pattern, { minLength: 1, maxLength: 25 }),
        fc.array(key, { minLength: 1, maxLength: 10 }),
        (patterns, keys) => {
          const trie = new TopicTrie<number>();
          patterns.forEach((p, i) => trie.add(p, i));
          for (const k of keys) {
            const out: number[] = [];
            trie.match(k, out);
            const expected = patterns
              .map((p, i) => (referenceMatch(p, k) ? i : -1))
              .filter((i) => i >= 0);
            assert.deepEqual([...new Set(out)].sort((x, y) => x - y), expected);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('still does after removing some keys', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(pattern, fc.boolean()), { minLength: 1, maxLength: 25 }),
        fc.array(key, { minLength: 1, maxLength: 10 }),
        (entries, keys) => {
          const trie = new TopicTrie<number>();
          entries.forEach(([p], i) => trie.add(p, i));
          entries.forEach(([p, drop], i) => {
            if (drop) assert.equal(trie.remove(p, i), true);
          });
          assert.equal(trie.size, entries.filter(([, drop]) => !drop).length);

          for (const k of keys) {
            const out: number[] = [];
            trie.match(k, out);
            const expected = entries
              .map(([p, drop], i) => (!drop && referenceMatch(p, k) ? i : -1))
              .filter((i) => i >= 0);
            assert.deepEqual([...new Set(out)].sort((x, y) => x - y), expected);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
