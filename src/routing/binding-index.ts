// Per-exchange-type indexes of an exchange's bindings, so route() asks
// "which bindings match this key and these headers" without scanning
// every binding, except for headers exchanges, whose patterns have no
// order to index by.
//
//   direct   Map routing key → bindings         one lookup
//   fanout   every binding                      no test at all
//   topic    TopicTrie over the key's words     see topic-trie.ts
//   headers  compiled patterns, all tried       see headers-match.ts

import {
  type HeadersPattern,
  compileHeadersPattern,
  headersMatch,
} from './headers-match.js';
import { TopicTrie } from './topic-trie.js';
import type { Binding, ExchangeType } from './types.js';
import type { TableInput } from './values.js';

export interface BindingIndex {
  /**
   * Adds a binding. Throws (406) before changing anything when the
   * binding does not suit the type; `owner` names it in the message.
   */
  add(binding: Binding, owner: string): void;
  remove(binding: Binding): void;
  /** Appends the matching bindings to `out`, possibly more than once. */
  match(routingKey: string, headers: TableInput, out: Binding[]): void;
}

export function indexFor(type: ExchangeType): BindingIndex {
  switch (type) {
    case 'direct':
      return new DirectIndex();
    case 'fanout':
      return new FanoutIndex();
    case 'topic':
      return new TopicIndex();
    case 'headers':
      return new HeadersIndex();
  }
}

class DirectIndex implements BindingIndex {
  private readonly byKey = new Map<string, Set<Binding>>();

  add(binding: Binding): void {
    const key = binding.routingKey;
    let set = this.byKey.get(key);
    if (set === undefined) this.byKey.set(key, (set = new Set()));
    set.add(binding);
  }

  remove(binding: Binding): void {
    const set = this.byKey.get(binding.routingKey);
    if (set === undefined) return;
    set.delete(binding);
    if (set.size === 0) this.byKey.delete(binding.routingKey);
  }

  match(routingKey: string, _headers: TableInput, out: Binding[]): void {
    const set = this.byKey.get(routingKey);
    if (set !== undefined) for (const binding of set) out.push(binding);
  }
}

class FanoutIndex implements BindingIndex {
  private readonly all = new Set<Binding>();

  add(binding: Binding): void {
    this.all.add(binding);
  }

  remove(binding: Binding): void {
    this.all.delete(binding);
  }

  match(_routingKey: string, _headers: TableInput, out: Binding[]): void {
    for (const binding of this.all) out.push(binding);
  }
}

class TopicIndex implements BindingIndex {
  private readonly trie = new TopicTrie<Binding>();

  add(binding: Binding): void {
    this.trie.add(binding.routingKey, binding);
  }

  remove(binding: Binding): void {
    this.trie.remove(binding.routingKey, binding);
  }

  match(routingKey: string, _headers: TableInput, out: Binding[]): void {
    this.trie.match(routingKey, out);
  }
}

class HeadersIndex implements BindingIndex {
  private readonly patterns = new Map<Binding, HeadersPattern>();

  add(binding: Binding, owner: string): void {
    this.patterns.set(binding, compileHeadersPattern(binding.arguments, owner));
  }

  remove(binding: Binding): void {
    this.patterns.delete(binding);
  }

  match(_routingKey: string, headers: TableInput, out: Binding[]): void {
    for (const [binding, pattern] of this.patterns) {
      if (headersMatch(pattern, headers)) out.push(binding);
    }
  }
}
