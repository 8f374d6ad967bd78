// The JSON form of a vhost's durable exchanges and bindings, written by
// ExchangeTable.toJSON() for the broker to log and read back by
// ExchangeTable.fromJSON() on recovery. Only what survives a restart is
// in it: durable exchanges other than the built-ins, and bindings whose
// source and destination are both durable. Argument values use the
// tagged encoding of values.ts, so bigints and bytes survive JSON.
//
//   { "version": 1, "vhost": "/",
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

/** A snapshot checked and decoded, ready to rebuild a table from. */
export interface ParsedSnapshot {
  readonly vhost: string;
  readonly exchanges: readonly {
    readonly name: string;
    readonly type: ExchangeType;
    readonly autoDelete: boolean;
    readonly internal: boolean;
    readonly arguments: Table;
  }[];
  readonly bindings: readonly {
    readonly source: string;
    readonly destination: string;
    readonly destinationKind: DestinationKind;
    readonly routingKey: string;
    readonly arguments: Table;
  }[];
}

/** The snapshot of exchanges and bindings already known to be durable. */
export function writeSnapshot(
  vhost: string,
  exchanges: readonly Exchange[],
  bindings: readonly Binding[],
): ExchangeSnapshot {
  return {
    version: SNAPSHOT_VERSION,
    vhost,
    exchanges: exchanges.map((x) => ({
      name: x.name,
      type: x.type,
      autoDelete: x.autoDelete,
      internal: x.internal,
      arguments: encodeTable(x.arguments),
    })),
    bindings: bindings.map((b) => ({
      source: b.source,
      destination: b.destination,
      destinationKind: b.destinationKind,
      routingKey: b.routingKey,
      arguments: encodeTable(b.arguments),
    })),
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

  const exchanges = list(root.exchanges, 'exchanges').map((item, i) => {
    const path = `exchanges.${i}`;
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
  });

  const bindings = list(root.bindings, 'bindings').map((item, i) => {
    const path = `bindings.${i}`;
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
  });

  return { vhost: text(root.vhost, 'vhost'), exchanges, bindings };
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
