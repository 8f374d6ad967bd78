// The shapes the routing layer hands out. Arguments are field tables
// as values.ts describes them: Maps of the JS values the AMQP codec
// gives (plainTable), copied in when declared.

import type { Table } from './values.js';

export type ExchangeType = 'direct' | 'fanout' | 'topic' | 'headers';

export const EXCHANGE_TYPES: readonly ExchangeType[] = [
  'direct',
  'fanout',
  'topic',
  'headers',
];

export type DestinationKind = 'queue' | 'exchange';

export interface Exchange {
  readonly name: string;
  readonly type: ExchangeType;
  readonly durable: boolean;
  /** Removed when its last binding as source goes. */
  readonly autoDelete: boolean;
  /** Clients cannot publish to it; other exchanges can route to it. */
  readonly internal: boolean;
  readonly arguments: Table;
}

/** Messages from `source` that match go on to `destination`. */
export interface Binding {
  readonly source: string;
  readonly destination: string;
  readonly destinationKind: DestinationKind;
  readonly routingKey: string;
  readonly arguments: Table;
}

/** What an unbind, a delete or a queue's deletion took away. */
export interface Removal {
  /** Exchanges removed: the one deleted, then auto-deleted ones. */
  readonly exchanges: readonly Exchange[];
  readonly bindings: readonly Binding[];
}

/**
 * One change to the durable part of a table, in the order it happened:
 * what a journal keeps between snapshots. Removing an exchange gives its
 * outgoing bindings' removals first, then the exchange's, then those of
 * the bindings to it, so each change applies to the state the ones
 * before it left.
 */
export type DurableChange =
  | { readonly kind: 'exchange-created'; readonly exchange: Exchange }
  | { readonly kind: 'exchange-removed'; readonly name: string }
  | { readonly kind: 'binding-added'; readonly binding: Binding }
  | { readonly kind: 'binding-removed'; readonly binding: Binding };
