// Topic matching for many binding keys at once: a trie over the words
// of the keys, walked once per routing key.
//
// A binding key is split on '.'; the word '*' matches exactly one word,
// '#' zero or more, anything else itself (so 'a*' is a plain word).
// The empty key has no words, as in RabbitMQ: '' matches only '' and
// '#', while '.' is two empty words and '*' does match one empty word.
//
// Why a trie and not one regex per binding: a regex pass costs
// O(bindings) per message, however few bindings match. The trie shares
// the common prefixes of all keys, so a routing key of n words follows
// at most three edges per word and node (its own word, '*', '#'): the
// cost grows with the paths that can still match, not with the number
// of bindings. 1,000 bindings `region.<r>.<service>.*` sit under one
// 'region' node and a message visits a handful of nodes.
//
//   keys a.*.c, a.#, *.b:   root ─┬─ a ─┬─ * ─ c   {a.*.c}
//                                 │     └─ #       {a.#}
//                                 └─ * ─ b         {*.b}
//
// '#' is where a naive walk blows up: for '#.a.#.a.#.a.#.b' and a long
// key of 'a's every way to split the key is tried. Two things keep it
// polynomial. Runs of '*' and '#' are normalised when a key is added
// ('#.*.#' and '*.#' both match "one or more words" and are stored as
// '*.#'), so '#' never follows '#'. And each '#' node runs its loop
// over the remaining words once per match: it is only ever entered
// again at a later word index (every entry comes from one upward loop
// of the nearest '#' above it, or from the fixed path from the root),
// and all later indexes were tried the first time. So a match costs at
// most (number of '#' nodes) x (words) walks of the trie below them.
// The memo is a number on each node and a counter on the trie: nothing
// is allocated per match.

/** Words of a topic key; '' has none (RabbitMQ's split_topic_key). */
export function splitTopicKey(key: string): string[] {
  return key === '' ? [] : key.split('.');
}

class TrieNode<T> {
  /** Children by literal word; created on first use. */
  words: Map<string, TrieNode<T>> | undefined;
  star: TrieNode<T> | undefined;
  hash: TrieNode<T> | undefined;
  /** Values whose key ends at this node. */
  values: Set<T> | undefined;
  /** For a '#' node: the match that last ran its loop. */
  epoch = 0;

  constructor(
    readonly parent: TrieNode<T> | undefined,
    readonly word: string,
  ) {}

  child(word: string): TrieNode<T> | undefined {
    if (word === '*') return this.star;
    if (word === '#') return this.hash;
    return this.words?.get(word);
  }

  isEmpty(): boolean {
    return (
      (this.values === undefined || this.values.size === 0) &&
      (this.words === undefined || this.words.size === 0) &&
      this.star === undefined &&
      this.hash === undefined
    );
  }
}

/** Topic keys to values; match() finds the values of matching keys. */
export class TopicTrie<T> {
  private readonly root = new TrieNode<T>(undefined, '');
  private epoch = 0;
  private count = 0;

  /** Number of (key, value) pairs held. */
  get size(): number {
    return this.count;
  }

  /** Adds `value` under `key`; false if that pair was already there. */
  add(key: string, value: T): boolean {
    let node = this.root;
    for (const word of normaliseKey(key)) {
      let next = node.child(word);
      if (next === undefined) {
        next = new TrieNode<T>(node, word);
        if (word === '*') node.star = next;
        else if (word === '#') node.hash = next;
        else (node.words ??= new Map()).set(word, next);
      }
      node = next;
    }

    node.values ??= new Set();
    if (node.values.has(value)) return false;
    node.values.add(value);
    this.count++;
    return true;
  }

  /** Removes the pair, and nodes left with nothing below them. */
  remove(key: string, value: T): boolean {
    let node = this.root;
    for (const word of normaliseKey(key)) {
      const next = node.child(word);
      if (next === undefined) return false;
      node = next;
    }
    if (node.values === undefined || !node.values.delete(value)) return false;
    this.count--;

    while (node.parent !== undefined && node.isEmpty()) {
      const { parent, word } = node;
      if (word === '*') parent.star = undefined;
      else if (word === '#') parent.hash = undefined;
      else parent.words?.delete(word);
      node = parent;
    }
    return true;
  }

  /**
   * Appends to `out` the values of every key matching `routingKey`. A
   * value can be appended more than once when two of its keys match.
   */
  match(routingKey: string, out: T[]): void {
    if (this.count === 0) return;
    this.epoch++;
    this.walk(this.root, splitTopicKey(routingKey), 0, out);
  }

  /** Matches words[i..] against the keys below `node`. */
  private walk(node: TrieNode<T>, words: string[], i: number, out: T[]): void {
    if (node.hash !== undefined) this.skip(node.hash, words, i, out);
    if (i === words.length) {
      if (node.values !== undefined) for (const v of node.values) out.push(v);
      return;
    }

    const next = node.words?.get(words[i]);
    if (next !== undefined) this.walk(next, words, i + 1, out);
    if (node.star !== undefined) this.walk(node.star, words, i + 1, out);
  }

  /** '#' at `node` takes words[i..j) for every j; see the top comment. */
  private skip(node: TrieNode<T>, words: string[], i: number, out: T[]): void {
    if (node.epoch === this.epoch) return;
    node.epoch = this.epoch;
    for (let j = i; j <= words.length; j++) this.walk(node, words, j, out);
  }
}

/**
 * Words of a binding key with each run of '*' and '#' that holds a '#'
 * rewritten as its stars then one '#': the run matches "at least as many
 * words as it has stars" in any order, so the meaning is unchanged.
 */
export function normaliseKey(key: string): string[] {
  const words = splitTopicKey(key);
  const out: string[] = [];
  let i = 0;
  while (i < words.length) {
    const word = words[i];
    if (word !== '*' && word !== '#') {
      out.push(word);
      i++;
      continue;
    }

    let stars = 0;
    let hash = false;
    for (; i < words.length; i++) {
      if (words[i] === '*') stars++;
      else if (words[i] === '#') hash = true;
      else break;
    }
    for (let s = 0; s < stars; s++) out.push('*');
    if (hash) out.push('#');
  }
  return out;
}
