// The JSON form of a vhost's durable exchanges and bindings, written by
// ExchangeTable.toJSON() for the broker to log and read back by
// ExchangeTable.fromJSON() on recovery. Only what survives a restart is
// in it: durable exchanges other than the built-ins, and bindings whose
// source and destination are both durable. Argument values use the
// tagged encoding of values.ts, so bigints and bytes survive JSON.
// `generation` names the journal of changes made since (see
// src/amqp/topology-journal.ts); a snapshot without one is generation 0.
// The journal's records (encodeChange, parseChange) use the same shapes.
//
//   { "version": 1, "vhost": "/", "generation": 3,
//     "exchanges": [{ "name": "logs", "type": "topic",
//                     "autoDelete": false, "internal": false,
//                     "arguments": { "alternate-exchange": "unrouted" } }],
//     "bindings":  [{ "source": "logs", "destination": "errors",
//                     "destinationKind": "queue", "routingKey": "*.error",
//                     "arguments": {} }] }

import { SnapshotError } from './errors.js';
import {
  type Binding,
  type DestinationKind,
  type DurableChange,
  EXCHANGE_TYPES,
  type Exchange,
  type ExchangeType,
} from './types.js';
import {
  type EncodedTable,
  type Table,
  decodeTable,
  encodeTable,
} from './values.js';

export const SNAPSHOT_VERSION = 1;

export interface ExchangeSnapshot {
  readonly version: typeof SNAPSHOT_VERSION;
  readonly vhost: string;
  readonly generation?: number;
  readonly exchanges: readonly SnapshotExchange[];
  readonly bindings: readonly SnapshotBinding[];
}

/** A durable exchange; `durable` is implied. */
export interface SnapshotExchange {
  readonly name: string;
  readonly type: ExchangeType;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly arguments: EncodedTable;
}

export interface SnapshotBinding {
  readonly source: string;
  readonly destination: string;
  readonly destinationKind: DestinationKind;
  readonly routingKey: string;
  readonly arguments: EncodedTable;
}

export interface ParsedExchange {
  readonly name: string;
  readonly type: ExchangeType;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly arguments: Table;
}

export interface ParsedBinding {
  readonly source: string;
  readonly destination: string;
  readonly destinationKind: DestinationKind;
  readonly routingKey: string;
  readonly arguments: Table;
}

/** A snapshot checked and decoded, ready to rebuild a table from. */
export interface ParsedSnapshot {
  readonly vhost: string;
  readonly generation: number;
  readonly exchanges: readonly ParsedExchange[];
  readonly bindings: readonly ParsedBinding[];
}

/** A journal record: one DurableChange in JSON. */
export type ChangeRecord =
  | { readonly op: 'exchange+'; readonly exchange: SnapshotExchange }
  | { readonly op: 'exchange-'; readonly name: string }
  | { readonly op: 'binding+'; readonly binding: SnapshotBinding }
  | { readonly op: 'binding-'; readonly binding: SnapshotBinding };

/** A journal record checked and decoded. */
export type ParsedChange =
  | { readonly op: 'exchange+'; readonly exchange: ParsedExchange }
  | { readonly op: 'exchange-'; readonly name: string }
  | { readonly op: 'binding+' | 'binding-'; readonly binding: ParsedBinding };

/** The snapshot of exchanges and bindings already known to be durable. */
export function writeSnapshot(
  vhost: string,
  exchanges: readonly Exchange[],
  bindings: readonly Binding[],
  generation = 0,
): ExchangeSnapshot {
  return {
    version: SNAPSHOT_VERSION,
    vhost,
    generation,
    exchanges: exchanges.map(encodeExchange),
    bindings: bindings.map(encodeBinding),
  };
}

export function encodeChange(change: DurableChange): ChangeRecord {
  switch (change.kind) {
    case 'exchange-created':
      return { op: 'exchange+', exchange: encodeExchange(change.exchange) };
    case 'exchange-removed':
      return { op: 'exchange-', name: change.name };
    case 'binding-added':
      return { op: 'binding+', binding: encodeBinding(change.binding) };
    case 'binding-removed':
      return { op: 'binding-', binding: encodeBinding(change.binding) };
  }
}

/** Checks the shape of a journal record; SnapshotError names the bad part. */
export function parseChange(input: unknown, path: string): ParsedChange {
  const root = record(input, path);
  switch (root.op) {
    case 'exchange+':
      return { op: 'exchange+', exchange: parseExchange(root.exchange, `${path}.exchange`) };
    case 'exchange-':
      return { op: 'exchange-', name: text(root.name, `${path}.name`) };
    case 'binding+':
    case 'binding-':
      return { op: root.op, binding: parseBinding(root.binding, `${path}.binding`) };
    default:
      throw new SnapshotError(`${path}.op`, `${JSON.stringify(root.op)} is not a change`);
  }
}

function encodeExchange(x: Exchange): SnapshotExchange {
  return {
    name: x.name,
    type: x.type,
    autoDelete: x.autoDelete,
    internal: x.internal,
    arguments: encodeTable(x.arguments),
  };
}

function encodeBinding(b: Binding): SnapshotBinding {
  return {
    source: b.source,
    destination: b.destination,
    destinationKind: b.destinationKind,
    routingKey: b.routingKey,
    arguments: encodeTable(b.arguments),
  };
}

/** Checks the shape of a snapshot; SnapshotError names the bad part. */
export function parseSnapshot(input: unknown): ParsedSnapshot {
  const root = record(input, 'snapshot');
  if (root.version !== SNAPSHOT_VERSION) {
    throw new SnapshotError(
      'version',
      `is ${JSON.stringify(root.version)}; ` +
        `this build reads ${SNAPSHOT_VERSION}`,
    );
  }

  const generation = root.generation ?? 0;
  if (typeof generation !== 'number' || !Number.isSafeInteger(generation) || generation < 0) {
    throw new SnapshotError('generation', 'is not a whole number from 0');
  }
  const exchanges = list(root.exchanges, 'exchanges')
    .map((item, i) => parseExchange(item, `exchanges.${i}`));
  const bindings = list(root.bindings, 'bindings')
    .map((item, i) => parseBinding(item, `bindings.${i}`));
  return { vhost: text(root.vhost, 'vhost'), generation, exchanges, bindings };
}

function parseExchange(item: unknown, path: string): ParsedExchange {
  const x = record(item, path);
  const type = text(x.type, `${path}.type`);
  if (!(EXCHANGE_TYPES as readonly string[]).includes(type)) {
    throw new SnapshotError(
      `${path}.type`,
      `'${type}' is not an exchange type`,
    );
  }
  return {
    name: text(x.name, `${path}.name`),
    type: type as ExchangeType,
    autoDelete: flag(x.autoDelete, `${path}.autoDelete`),
    internal: flag(x.internal, `${path}.internal`),
    arguments: decodeTable(x.arguments, `${path}.arguments`),
  };
}

function parseBinding(item: unknown, path: string): ParsedBinding {
  const b = record(item, path);
  const kind = b.destinationKind;
  if (kind !== 'queue' && kind !== 'exchange') {
    throw new SnapshotError(
      `${path}.destinationKind`,
      "is neither 'queue' nor 'exchange'",
    );
  }
  return {
    source: text(b.source, `${path}.source`),
    destination: text(b.destination, `${path}.destination`),
    destinationKind: kind as DestinationKind,
    routingKey: text(b.routingKey, `${path}.routingKey`),
    arguments: decodeTable(b.arguments, `${path}.arguments`),
  };
}

function record(v: unknown, path: string): { [key: string]: unknown } {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new SnapshotError(path, 'is not an object');
  }
  return v as { [key: string]: unknown };
}

function list(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) throw new SnapshotError(path, 'is not an array');
  return v;
}

function text(v: unknown, path: string): string {
  if (typeof v !== 'string') throw new SnapshotError(path, 'is not a string');
  return v;
}

function flag(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') throw new SnapshotError(path, 'is not a boolean');
  return v;
}
