// The exchanges and bindings of one virtual host, and routing over them,
// with RabbitMQ's semantics for AMQP 0-9-1: the default exchange, the
// amq.* built-ins, exchange-to-exchange bindings, auto-delete, internal
// exchanges and alternate exchanges. Pure logic, no wire and no disk:
// the AMQP adapter calls it and turns a RoutingError's replyCode into
// channel.close; the broker answers QueueLookup and keeps toJSON().
//
// Checks run in RabbitMQ's order (rabbit_channel), so a method wrong in
// two ways fails with the same code as there: the default exchange
// (403), then existence (404), then settings (406).

import {
  checkEquivalent,
  checkExchangeType,
  checkNewArguments,
} from './equivalence.js';
import {
  AccessRefusedError,
  NotFoundError,
  PreconditionFailedError,
  RoutingError,
  SnapshotError,
} from './errors.js';
import {
  type ExchangeState,
  ExchangeGraph,
  type RemovalLog,
  type StoredBinding,
  bindingId,
  publicBinding,
} from './graph.js';
import {
  type ExchangeSnapshot,
  type ParsedBinding,
  parseChange,
  parseSnapshot,
  writeSnapshot,
} from './snapshot.js';
import type {
  Binding,
  DestinationKind,
  DurableChange,
  Exchange,
  ExchangeType,
  Removal,
} from './types.js';
import { EMPTY_TABLE, type TableInput, importTable } from './values.js';

export type { Binding, DestinationKind, DurableChange, Exchange, ExchangeType, Removal };
export type { ExchangeSnapshot } from './snapshot.js';
export type { TableInput } from './values.js';

/** What the table asks of queues, which the broker owns. */
export interface QueueLookup {
  /**
   * Whether the queue exists: bind and unbind give 404 when not, and
   * the default exchange routes only to queues that exist.
   */
  hasQueue(name: string): boolean;
  /**
   * Whether the queue survives a restart, asked once when a binding to
   * it is made: only then is the binding in the snapshot. Without it
   * every queue counts as durable, as Usher's queues all are.
   */
  isDurable?(name: string): boolean;
}

export interface ExchangeTableOptions {
  /** Names the vhost in messages and the snapshot; '/' by default. */
  readonly vhost?: string;
}

export interface ExchangeSpec {
  readonly name: string;
  /** As it comes off the wire: 503 unless one of EXCHANGE_TYPES. */
  readonly type: string;
  readonly durable?: boolean;
  readonly autoDelete?: boolean;
  readonly internal?: boolean;
  readonly arguments?: TableInput;
}

export interface BindingSpec {
  readonly source: string;
  readonly destination: string;
  readonly destinationKind: DestinationKind;
  /** '' when left out. */
  readonly routingKey?: string;
  readonly arguments?: TableInput;
}

/** In every vhost from the start, durable, never deleted. */
export const BUILT_IN_EXCHANGES: ReadonlyMap<string, ExchangeType> = new Map([
  ['', 'direct'],
  ['amq.direct', 'direct'],
  ['amq.fanout', 'fanout'],
  ['amq.topic', 'topic'],
  ['amq.headers', 'headers'],
  ['amq.match', 'headers'],
]);

export class ExchangeTable {
  readonly vhost: string;
  private readonly graph = new ExchangeGraph();

  constructor(
    private readonly queues: QueueLookup,
    options: ExchangeTableOptions = {},
  ) {
    this.vhost = options.vhost ?? '/';
    for (const [name, type] of BUILT_IN_EXCHANGES) {
      this.graph.create(name, type, true, false, false, EMPTY_TABLE);
    }
    this.graph.durableChanges = 0;
  }

  /** Grows whenever toJSON() may have changed: when to keep it again. */
  get revision(): number {
    return this.graph.durableChanges;
  }

  /**
   * Tells `listener` each change to the durable part as it is made
   * (null: no one), so a journal can keep them between snapshots.
   */
  watchDurableChanges(listener: ((change: DurableChange) => void) | null): void {
    this.graph.onDurableChange = listener;
  }

  get(name: string): Exchange | undefined {
    return this.graph.states.get(name)?.exchange;
  }

  /** Every exchange, the default and the built-ins included. */
  list(): Exchange[] {
    return [...this.graph.states.values()].map((state) => state.exchange);
  }

  /** Every explicit binding; the default exchange's are implicit. */
  bindings(): Binding[] {
    const out: Binding[] = [];
    for (const state of this.graph.states.values()) {
      for (const b of state.outgoing.values()) out.push(publicBinding(b));
    }
    return out;
  }

  /**
   * exchange.declare: creates the exchange, or checks that the existing
   * one has the same type, flags and arguments (406 if not). The
   * default exchange cannot be declared at all (403), as in RabbitMQ.
   */
  declare(spec: ExchangeSpec): Exchange {
    const { name } = spec;
    const type = checkExchangeType(spec.type);
    this.checkNotDefault(name);
    const where = this.rs('exchange', name);
    const asked = {
      type,
      durable: spec.durable ?? false,
      autoDelete: spec.autoDelete ?? false,
      internal: spec.internal ?? false,
      arguments: importTable(spec.arguments, where),
    };

    const existing = this.get(name);
    if (existing !== undefined) {
      checkEquivalent(existing, asked, where);
      return existing;
    }

    // The reserved prefix only stops creation (spec 0-9-1, and
    // RabbitMQ): redeclaring amq.topic as it is succeeds above.
    if (name.startsWith('amq.')) {
      throw new AccessRefusedError(
        `exchange name '${name}' contains reserved prefix 'amq.*'`,
      );
    }
    checkNewArguments(asked.arguments, where);
    const { durable, autoDelete, internal, arguments: args } = asked;
    const state = this.graph.create(
      name,
      type,
      durable,
      autoDelete,
      internal,
      args,
    );
    return state.exchange;
  }

  /**
   * exchange.declare with passive set: 404 unless it exists. RabbitMQ
   * refuses even this for the default exchange (403); so do we.
   */
  declarePassive(name: string): Exchange {
    this.checkNotDefault(name);
    return this.mustGet(name).exchange;
  }

  /**
   * exchange.delete. Deleting an exchange that does not exist succeeds
   * with nothing removed, as in RabbitMQ. Bindings from and to it go;
   * auto-delete exchanges that lose their last binding go after it.
   */
  delete(name: string, options: { readonly ifUnused?: boolean } = {}): Removal {
    this.checkNotDefault(name);
    if (name.startsWith('amq.')) {
      throw new AccessRefusedError(
        `deletion of system ${this.rs('exchange', name)} not allowed`,
      );
    }
    const log: RemovalLog = { exchanges: [], bindings: [] };
    const state = this.graph.states.get(name);
    if (state === undefined) return log;
    if (options.ifUnused === true && state.outgoing.size > 0) {
      throw new PreconditionFailedError(`${this.rs('exchange', name)} in use`);
    }

    this.graph.remove(state, log);
    return log;
  }

  /** queue.bind and exchange.bind; false if the binding already exists. */
  bind(spec: BindingSpec): boolean {
    const source = this.checkEnds(spec);
    const owner = this.describeBinding(spec);
    const args = importTable(spec.arguments, owner);
    const { destination, destinationKind } = spec;
    const routingKey = spec.routingKey ?? '';
    const id = bindingId(destinationKind, destination, routingKey, args);
    if (source.outgoing.has(id)) return false;

    const destinationDurable =
      destinationKind === 'exchange'
        ? this.mustGet(destination).exchange.durable
        : (this.queues.isDurable?.(destination) ?? true);
    const binding: StoredBinding = {
      source: spec.source,
      destination,
      destinationKind,
      routingKey,
      arguments: args,
      id,
      durable: source.exchange.durable && destinationDurable,
    };
    this.graph.attach(source, binding, owner);
    return true;
  }

  /** queue.unbind and exchange.unbind; a missing binding is no error. */
  unbind(spec: BindingSpec): Removal {
    const source = this.checkEnds(spec);
    const args = importTable(spec.arguments, this.describeBinding(spec));
    const { destination, destinationKind } = spec;
    const routingKey = spec.routingKey ?? '';
    const id = bindingId(destinationKind, destination, routingKey, args);
    const log: RemovalLog = { exchanges: [], bindings: [] };
    const binding = source.outgoing.get(id);
    if (binding === undefined) return log;

    this.graph.detach(source, binding, log);
    this.graph.autoDelete([source.exchange.name], log);
    return log;
  }

  /** The broker deleted a queue: its bindings go, maybe their sources. */
  queueDeleted(name: string): Removal {
    const log: RemovalLog = { exchanges: [], bindings: [] };
    this.graph.destinationGone('queue', name, log);
    return log;
  }

  /**
   * The queues a message published to `exchange` goes to. Follows
   * exchange-to-exchange bindings, each exchange once however many paths
   * lead to it (so cycles end), and an exchange's alternate-exchange
   * when its own bindings match nothing. 404 if `exchange` does not
   * exist, 403 if it is internal. The default exchange gives the queue
   * named by the key, if it exists.
   *
   * Several keys (CC and BCC, amqp/sender-selected.ts) route as RabbitMQ
   * routes them: each exchange on the way matches all of them, and its
   * alternate is taken only when none matched.
   */
  route(
    exchange: string,
    routingKeys: string | readonly string[],
    headers: TableInput = EMPTY_TABLE,
  ): Set<string> {
    const first = this.mustGet(exchange);
    if (first.exchange.internal) {
      throw new AccessRefusedError(
        `cannot publish to internal ${this.rs('exchange', exchange)}`,
      );
    }
    const queues = new Set<string>();
    if (exchange === '') {
      if (typeof routingKeys === 'string') {
        if (this.queues.hasQueue(routingKeys)) queues.add(routingKeys);
      } else {
        for (const key of routingKeys) if (this.queues.hasQueue(key)) queues.add(key);
      }
      return queues;
    }

    const seen = new Set<string>([exchange]);
    const pending: ExchangeState[] = [first];
    const matched: Binding[] = [];
    for (let x = pending.pop(); x !== undefined; x = pending.pop()) {
      matched.length = 0;
      // One key (nearly every publish) makes no array to walk.
      if (typeof routingKeys === 'string') x.index.match(routingKeys, headers, matched);
      else for (const key of routingKeys) x.index.match(key, headers, matched);
      if (matched.length === 0 && x.alternate !== undefined) {
        this.follow(x.alternate, seen, pending);
      }
      for (const b of matched) {
        if (b.destinationKind === 'queue') queues.add(b.destination);
        else this.follow(b.destination, seen, pending);
      }
    }
    return queues;
  }

  /** Durable exchanges and bindings, for the broker to keep. */
  toJSON(): ExchangeSnapshot {
    // Not one method with a default: JSON.stringify passes toJSON a key.
    return this.snapshot(0);
  }

  /** toJSON() naming the journal that follows it (topology-journal.ts). */
  snapshot(generation: number): ExchangeSnapshot {
    const exchanges: Exchange[] = [];
    const bindings: Binding[] = [];
    for (const { exchange, outgoing } of this.graph.states.values()) {
      if (exchange.durable && !BUILT_IN_EXCHANGES.has(exchange.name)) {
        exchanges.push(exchange);
      }
      for (const b of outgoing.values()) if (b.durable) bindings.push(b);
    }
    return writeSnapshot(this.vhost, exchanges, bindings, generation);
  }

  /**
   * Rebuilds a table from toJSON()'s output. Queues are not looked up:
   * the broker may recover them before or after. SnapshotError when the
   * snapshot is malformed or names exchanges it does not hold.
   */
  static fromJSON(snapshot: unknown, queues: QueueLookup): ExchangeTable {
    return ExchangeTable.restore(snapshot, queues).table;
  }

  /** fromJSON, also answering the snapshot's journal generation. */
  static restore(
    snapshot: unknown,
    queues: QueueLookup,
  ): { table: ExchangeTable; generation: number } {
    const parsed = parseSnapshot(snapshot);
    const table = new ExchangeTable(queues, { vhost: parsed.vhost });
    const { graph } = table;

    parsed.exchanges.forEach((x, i) => {
      if (graph.states.has(x.name)) {
        throw new SnapshotError(`exchanges.${i}.name`, `'${x.name}' is taken`);
      }
      const { name, type, autoDelete, internal } = x;
      graph.create(name, type, true, autoDelete, internal, x.arguments);
    });
    parsed.bindings.forEach((b, i) => {
      const path = `bindings.${i}`;
      const source = graph.states.get(b.source);
      if (source === undefined || b.source === '') {
        throw new SnapshotError(`${path}.source`, 'is not a durable exchange');
      }
      const target = graph.states.get(b.destination);
      if (b.destinationKind === 'exchange' && target === undefined) {
        throw new SnapshotError(`${path}.destination`, 'is not an exchange');
      }
      const { destinationKind, destination, routingKey, arguments: args } = b;
      const id = bindingId(destinationKind, destination, routingKey, args);
      try {
        graph.attach(source, { ...b, id, durable: true }, path);
      } catch (err) {
        if (!(err instanceof RoutingError)) throw err;
        throw new SnapshotError(path, err.message);
      }
    });

    graph.durableChanges = 0;
    return { table, generation: parsed.generation };
  }

  /**
   * Replays one journal record (what encodeChange made of a
   * DurableChange) on a table restored from the snapshot before it. No
   * RabbitMQ checks run: the change was checked when it was made. A
   * record that does not fit the state (a source that is not there, a
   * binding added twice) is a SnapshotError at `path`: the journal does
   * not follow this snapshot.
   */
  applyChange(input: unknown, path: string): void {
    const change = parseChange(input, path);
    const { graph } = this;
    switch (change.op) {
      case 'exchange+': {
        const { name, type, autoDelete, internal, arguments: args } = change.exchange;
        if (graph.states.has(name)) {
          throw new SnapshotError(`${path}.exchange.name`, `'${name}' is taken`);
        }
        graph.create(name, type, true, autoDelete, internal, args);
        return;
      }
      case 'exchange-': {
        const state = graph.states.get(change.name);
        if (state === undefined || BUILT_IN_EXCHANGES.has(change.name) || state.outgoing.size > 0) {
          throw new SnapshotError(
            `${path}.name`,
            `'${change.name}' is not a durable exchange without bindings`,
          );
        }
        graph.states.delete(change.name);
        return;
      }
      case 'binding+':
      case 'binding-': {
        const b = change.binding;
        const source = this.journalSource(b, path);
        const id = bindingId(b.destinationKind, b.destination, b.routingKey, b.arguments);
        const existing = source.outgoing.get(id);
        if (change.op === 'binding-') {
          if (existing === undefined) throw new SnapshotError(`${path}.binding`, 'is not bound');
          graph.detach(source, existing, { exchanges: [], bindings: [] });
          return;
        }
        if (existing !== undefined) throw new SnapshotError(`${path}.binding`, 'is bound already');
        if (b.destinationKind === 'exchange' && !graph.states.has(b.destination)) {
          throw new SnapshotError(`${path}.binding.destination`, 'is not an exchange');
        }
        try {
          graph.attach(source, { ...b, id, durable: true }, path);
        } catch (err) {
          if (!(err instanceof RoutingError)) throw err;
          throw new SnapshotError(path, err.message);
        }
      }
    }
  }

  private journalSource(b: ParsedBinding, path: string): ExchangeState {
    const source = this.graph.states.get(b.source);
    if (source === undefined || b.source === '') {
      throw new SnapshotError(`${path}.binding.source`, 'is not a durable exchange');
    }
    return source;
  }

  // ---- helpers -----------------------------------------------------------

  /** "exchange 'logs' in vhost '/'", as RabbitMQ's rs() names things. */
  private rs(kind: 'exchange' | 'queue', name: string): string {
    return `${kind} '${name}' in vhost '${this.vhost}'`;
  }

  private describeBinding(b: BindingSpec): string {
    const { destinationKind, destination, source } = b;
    return (
      `binding of ${destinationKind} '${destination}' ` +
      `to ${this.rs('exchange', source)}`
    );
  }

  private mustGet(name: string): ExchangeState {
    const state = this.graph.states.get(name);
    if (state === undefined) {
      throw new NotFoundError(`no ${this.rs('exchange', name)}`);
    }
    return state;
  }

  private checkNotDefault(name: string): void {
    if (name === '') {
      throw new AccessRefusedError(
        'operation not permitted on the default exchange',
      );
    }
  }

  /** Default exchange at either end (403), then source, destination (404). */
  private checkEnds(spec: BindingSpec): ExchangeState {
    const { source, destination, destinationKind } = spec;
    if (destinationKind === 'exchange') this.checkNotDefault(destination);
    this.checkNotDefault(source);
    const state = this.mustGet(source);
    if (destinationKind === 'exchange') this.mustGet(destination);
    else if (!this.queues.hasQueue(destination)) {
      throw new NotFoundError(`no ${this.rs('queue', destination)}`);
    }
    return state;
  }

  private follow(
    name: string,
    seen: Set<string>,
    pending: ExchangeState[],
  ): void {
    if (seen.has(name)) return;
    seen.add(name);
    const state = this.graph.states.get(name);
    if (state !== undefined) pending.push(state);
  }
}
