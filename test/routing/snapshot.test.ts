// toJSON() and fromJSON(): what is kept (durable on both ends), that a
// round trip through JSON text gives the same table, argument values of
// every kind, and refusals of damaged snapshots.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { SnapshotError } from '../../src/routing/errors.js';
import { ExchangeTable } from '../../src/routing/exchanges.js';
import { FakeQueues, sorted, tableWith } from './helpers.js';

const q = (destination: string, routingKey = '') =>
  ({ destination, destinationKind: 'queue' as const, routingKey });
const x = (destination: string, routingKey = '') =>
  ({ destination, destinationKind: 'exchange' as const, routingKey });

function roundTrip(table: ExchangeTable, queues: FakeQueues): ExchangeTable {
  return ExchangeTable.fromJSON(JSON.parse(JSON.stringify(table)), queues);
}

describe('snapshot', () => {
  function setup() {
    const made = tableWith('orders', 'tmp.reply');
    const { table } = made;
    table.declare({ name: 'logs', type: 'topic', durable: true,
      arguments: { 'alternate-exchange': 'unrouted' } });
    table.declare({ name: 'unrouted', type: 'fanout', durable: true,
      internal: true });
    table.declare({ name: 'match', type: 'headers', durable: true,
      autoDelete: true });
    table.declare({ name: 'scratch', type: 'fanout' });
    table.bind({ source: 'logs', ...q('orders', '*.error') });
    table.bind({ source: 'logs', ...q('tmp.reply', '#') });
    table.bind({ source: 'logs', ...x('scratch', '#') });
    table.bind({ source: 'scratch', ...q('orders') });
    table.bind({ source: 'unrouted', ...q('orders') });
    table.bind({ source: 'amq.topic', ...x('logs', 'app.#') });
    table.bind({ source: 'match', ...q('orders'),
      arguments: { 'x-match': 'any', n: 1, big: 2n ** 62n, f: 1.5, nan: Number.NaN,
        neg: -0, inf: -Infinity, on: true, none: null, raw: Buffer.from([0, 255]),
        list: [1, 'two', [3n]], table: { deep: { er: 'x' } } } });
    return made;
  }

  it('holds durable exchanges and the bindings durable at both ends', () => {
    const { table } = setup();
    const snapshot = table.toJSON();
    assert.equal(snapshot.version, 1);
    assert.equal(snapshot.vhost, '/');
    const exchanges = snapshot.exchanges.map((e) =>
      [e.name, e.type, e.autoDelete, e.internal]);
    assert.deepEqual(exchanges, [
      ['logs', 'topic', false, false],
      ['unrouted', 'fanout', false, true],
      ['match', 'headers', true, false],
    ]);
    assert.equal(JSON.stringify(snapshot.exchanges[0].arguments),
      '{"alternate-exchange":"unrouted"}');
    const bindings = snapshot.bindings.map((b) =>
      `${b.source}>${b.destination}:${b.routingKey}`);
    assert.deepEqual(bindings.sort(), [
      'amq.topic>logs:app.#',
      'logs>orders:*.error',
      'match>orders:',
      'unrouted>orders:',
    ]);
  });

  it('writes argument values JSON can carry, tagging the others', () => {
    const { table } = setup();
    const args = table.toJSON().bindings.find((b) => b.source === 'match')?.arguments;
    assert.deepEqual(JSON.parse(JSON.stringify(args)), {
      big: { $bigint: '4611686018427387904' },
      f: 1.5,
      inf: { $float: '-Infinity' },
      list: [1, 'two', [{ $bigint: '3' }]],
      n: 1,
      nan: { $float: 'NaN' },
      neg: { $float: '-0' },
      none: null,
      on: true,
      raw: { $bytes: 'AP8=' },
      table: { $table: { deep: { $table: { er: 'x' } } } },
      'x-match': 'any',
    });
  });

  it('gives back the same table through JSON text', () => {
    const { table, queues } = setup();
    const restored = roundTrip(table, queues);

    assert.deepEqual(restored.toJSON(), table.toJSON());
    assert.equal(restored.revision, 0);
    assert.equal(restored.get('scratch'), undefined);
    assert.deepEqual(restored.get('unrouted')?.internal, true);
    const before = table.bindings().find((b) => b.source === 'match');
    const after = restored.bindings().find((b) => b.source === 'match');
    assert.deepEqual(after, before);
    assert.ok(Object.is(after?.arguments.get('neg'), -0));
  });

  it('routes the same once restored', () => {
    const { table, queues } = setup();
    const restored = roundTrip(table, queues);
    assert.deepEqual(sorted(restored.route('amq.topic', 'app.db.error')), ['orders']);
    assert.deepEqual(sorted(restored.route('logs', 'nothing')), ['orders']);
    assert.deepEqual(sorted(restored.route('match', 'k', { n: 1n })), ['orders']);
    const raw = { raw: Buffer.from([0, 255]) };
    assert.deepEqual(sorted(restored.route('match', 'k', raw)), ['orders']);
    assert.deepEqual(sorted(restored.route('match', 'k', { n: 2 })), []);
  });

  it('keeps auto-delete working after a restore', () => {
    const { table, queues } = setup();
    const restored = roundTrip(table, queues);
    const removal = restored.queueDeleted('orders');
    assert.deepEqual(removal.exchanges.map((e) => e.name), ['match']);
  });

  it('counts revisions only for what the snapshot holds', () => {
    const { table } = tableWith('orders', 'tmp.reply');
    let last = table.revision;
    const changed = (expected: boolean) => {
      assert.equal(table.revision !== last, expected);
      last = table.revision;
    };
    table.declare({ name: 'scratch', type: 'fanout' });
    changed(false);
    table.bind({ source: 'scratch', ...q('orders') });
    changed(false);
    table.declare({ name: 'logs', type: 'fanout', durable: true });
    changed(true);
    table.declare({ name: 'logs', type: 'fanout', durable: true });
    changed(false);
    table.bind({ source: 'logs', ...q('tmp.reply') });
    changed(false);
    table.bind({ source: 'logs', ...q('orders') });
    changed(true);
    table.queueDeleted('tmp.reply');
    changed(false);
    table.delete('logs');
    changed(true);
  });
});

describe('damaged snapshots', () => {
  const good = () => ({
    version: 1,
    vhost: '/',
    exchanges: [{ name: 'logs', type: 'topic', autoDelete: false, internal: false,
      arguments: {} }],
    bindings: [{ source: 'logs', destination: 'q', destinationKind: 'queue',
      routingKey: '#', arguments: {} }],
  });

  function refused(snapshot: unknown, path: string, message: RegExp): void {
    assert.throws(
      () => ExchangeTable.fromJSON(snapshot, new FakeQueues()),
      (err: unknown) => {
        assert.ok(err instanceof SnapshotError, String(err));
        assert.equal(err.path, path);
        assert.equal(err.code, 'ROUTING_SNAPSHOT_INVALID');
        assert.match(err.message, message);
        return true;
      },
    );
  }

  it('reads a good one, without asking for its queues', () => {
    const table = ExchangeTable.fromJSON(good(), new FakeQueues());
    assert.deepEqual(table.bindings().map((b) => b.destination), ['q']);
  });

  it('names the part that is wrong', () => {
    refused(null, 'snapshot', /is not an object/);
    refused({ ...good(), version: 2 }, 'version', /is 2; this build reads 1/);
    refused({ ...good(), exchanges: {} }, 'exchanges', /not an array/);
    const s1 = good();
    (s1.exchanges[0] as { type: string }).type = 'x-custom';
    refused(s1, 'exchanges.0.type', /'x-custom' is not an exchange type/);
    const s2 = good();
    (s2.exchanges[0] as { autoDelete: unknown }).autoDelete = 'no';
    refused(s2, 'exchanges.0.autoDelete', /not a boolean/);
    const s3 = good();
    s3.exchanges.push({ ...s3.exchanges[0], name: 'amq.topic' });
    refused(s3, 'exchanges.1.name', /'amq.topic' is taken/);
    const s4 = good();
    s4.bindings[0].source = 'gone';
    refused(s4, 'bindings.0.source', /not a durable exchange/);
    const s5 = good();
    s5.bindings[0] = { ...s5.bindings[0], destinationKind: 'exchange',
      destination: 'gone' };
    refused(s5, 'bindings.0.destination', /not an exchange/);
    const s6 = good();
    s6.bindings[0].destinationKind = 'topic';
    refused(s6, 'bindings.0.destinationKind', /neither 'queue' nor 'exchange'/);
    const s7 = good();
    (s7.bindings[0] as { arguments: unknown }).arguments = { n: { $bigint: '1.5' } };
    refused(s7, 'bindings.0.arguments.n', /not an encoded field value/);
    const s8 = good();
    (s8.bindings[0] as { arguments: unknown }).arguments = { n: { $what: 'x' } };
    refused(s8, 'bindings.0.arguments.n', /not an encoded field value/);
  });

  it('refuses a headers binding with a bad x-match', () => {
    const s = good();
    s.exchanges[0].type = 'headers';
    (s.bindings[0] as { arguments: unknown }).arguments = { 'x-match': 'most' };
    refused(s, 'bindings.0', /invalid x-match field value 'most'/);
  });
});
