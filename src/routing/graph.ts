// The exchanges of a vhost and the bindings between them, indexed both
// ways: by source (in each exchange's BindingIndex, for routing) and by
// destination (to drop a deleted queue's or exchange's bindings without
// a scan). No checks here: ExchangeTable checks, then calls these.
//
//   states    name → { exchange, index, outgoing: id → binding }
//   incoming  'q:orders' | 'x:logs' → bindings to that destination

import { type BindingIndex, indexFor } from './binding-index.js';
import type {
  Binding,
  DestinationKind,
  DurableChange,
  Exchange,
  ExchangeType,
} from './types.js';
import { type Table, tableKey } from './values.js';

export interface StoredBinding extends Binding {
  /** Equal for bindings RabbitMQ holds equal: ends, key, arguments. */
  readonly id: string;
  /** Both ends durable: it belongs in the snapshot. */
  readonly durable: boolean;
}

export interface ExchangeState {
  readonly exchange: Exchange;
  readonly index: BindingIndex;
  /** Bindings with this exchange as source, by id. */
  readonly outgoing: Map<string, StoredBinding>;
  /** Its alternate-exchange argument, if any. */
  readonly alternate: string | undefined;
}

/** Collects what a change removed, for the caller's Removal. */
export interface RemovalLog {
  readonly exchanges: Exchange[];
  readonly bindings: Binding[];
}

export class ExchangeGraph {
  readonly states = new Map<string, ExchangeState>();
  private readonly incoming = new Map<string, Set<StoredBinding>>();
  /** Counts changes to durable exchanges and bindings. */
  durableChanges = 0;
  /** Told each change to the durable part, for a journal to keep. */
  onDurableChange: ((change: DurableChange) => void) | null = null;

  create(
    name: string,
    type: ExchangeType,
    durable: boolean,
    autoDelete: boolean,
    internal: boolean,
    args: Table,
  ): ExchangeState {
    const exchange: Exchange = Object.freeze({
      name,
      type,
      durable,
      autoDelete,
      internal,
      arguments: args,
    });
    const alternate = args.get('alternate-exchange');
    const state: ExchangeState = {
      exchange,
      index: indexFor(type),
      outgoing: new Map(),
      alternate: typeof alternate === 'string' ? alternate : undefined,
    };
    this.states.set(name, state);
    if (durable) this.changed({ kind: 'exchange-created', exchange });
    return state;
  }

  /**
   * Adds a binding. The source's index may refuse it (406, a headers
   * binding's x-match) before anything changes; `owner` names it then.
   */
  attach(source: ExchangeState, binding: StoredBinding, owner: string): void {
    source.index.add(binding, owner);
    source.outgoing.set(binding.id, binding);
    const key = destinationKey(binding.destinationKind, binding.destination);
    let set = this.incoming.get(key);
    if (set === undefined) this.incoming.set(key, (set = new Set()));
    set.add(binding);
    if (binding.durable) this.changed({ kind: 'binding-added', binding: publicBinding(binding) });
  }

  detach(source: ExchangeState, b: StoredBinding, log: RemovalLog): void {
    source.index.remove(b);
    source.outgoing.delete(b.id);
    const key = destinationKey(b.destinationKind, b.destination);
    const set = this.incoming.get(key);
    set?.delete(b);
    if (set?.size === 0) this.incoming.delete(key);
    if (b.durable) this.changed({ kind: 'binding-removed', binding: publicBinding(b) });
    log.bindings.push(publicBinding(b));
  }

  /**
   * Removes every binding to a destination that is going away, then the
   * auto-delete sources that this leaves with no binding.
   */
  destinationGone(kind: DestinationKind, name: string, log: RemovalLog): void {
    const sources: string[] = [];
    const key = destinationKey(kind, name);
    for (const b of [...(this.incoming.get(key) ?? [])]) {
      const source = this.states.get(b.source);
      if (source !== undefined) this.detach(source, b, log);
      sources.push(b.source);
    }
    this.autoDelete(sources, log);
  }

  /**
   * Removes an exchange and its bindings both ways, then cascades. Its
   * own bindings go before it, so a journal replaying the changes never
   * meets a binding whose source is gone.
   */
  remove(state: ExchangeState, log: RemovalLog): void {
    const { name, durable } = state.exchange;
    for (const b of [...state.outgoing.values()]) this.detach(state, b, log);
    this.states.delete(name);
    if (durable) this.changed({ kind: 'exchange-removed', name });
    log.exchanges.push(state.exchange);

    this.destinationGone('exchange', name, log);
  }

  private changed(change: DurableChange): void {
    this.durableChanges++;
    this.onDurableChange?.(change);
  }

  /**
   * Deletes the auto-delete exchanges among `names` left with no binding
   * as source. An exchange that was never bound stays, as in RabbitMQ:
   * only losing its last binding removes it.
   */
  autoDelete(names: string[], log: RemovalLog): void {
    for (const name of names) {
      const state = this.states.get(name);
      if (state === undefined || !state.exchange.autoDelete) continue;
      if (state.outgoing.size === 0) this.remove(state, log);
    }
  }
}

function destinationKey(kind: DestinationKind, name: string): string {
  return kind === 'queue' ? `q:${name}` : `x:${name}`;
}

export function bindingId(
  destinationKind: DestinationKind,
  destination: string,
  routingKey: string,
  args: Table,
): string {
  const argsKey = tableKey(args);
  return JSON.stringify([destinationKind, destination, routingKey, argsKey]);
}

/** A binding without the graph's bookkeeping, for callers to keep. */
export function publicBinding(b: Binding): Binding {
  const { source, destination, destinationKind, routingKey } = b;
  return {
    source,
    destination,
    destinationKind,
    routingKey,
    arguments: b.arguments,
  };
}
