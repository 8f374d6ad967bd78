// Declaring, deleting, binding and unbinding, with RabbitMQ's refusals
// word for word; the default and built-in exchanges; auto-delete.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  PreconditionFailedError,
  RoutingError,
} from '../../src/routing/errors.js';
import { ExchangeTable } from '../../src/routing/exchanges.js';
import { FakeQueues, assertRefused, sorted, tableWith } from './helpers.js';

const q = (destination: string, routingKey = '') =>
  ({ destination, destinationKind: 'queue' as const, routingKey });
const x = (destination: string, routingKey = '') =>
  ({ destination, destinationKind: 'exchange' as const, routingKey });

describe('built-in exchanges', () => {
  it('are there from the start, durable', () => {
    const { table } = tableWith();
    const seen = table.list().map((e) =>
      [e.name, e.type, e.durable, e.autoDelete, e.internal]);
    assert.deepEqual(seen, [
      ['', 'direct', true, false, false],
      ['amq.direct', 'direct', true, false, false],
      ['amq.fanout', 'fanout', true, false, false],
      ['amq.topic', 'topic', true, false, false],
      ['amq.headers', 'headers', true, false, false],
      ['amq.match', 'headers', true, false, false],
    ]);
    assert.equal(table.revision, 0);
  });

  it('redeclare as they are; differently is 406', () => {
    const { table } = tableWith();
    const topic = table.get('amq.topic');
    const again = { name: 'amq.topic', type: 'topic', durable: true };
    assert.equal(table.declare(again), topic);
    assertRefused(
      () => table.declare({ name: 'amq.topic', type: 'direct', durable: true }),
      406,
      "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'amq.topic' " +
        "in vhost '/': received 'direct' but current is 'topic'",
    );
    assertRefused(
      () => table.declare({ name: 'amq.direct', type: 'direct' }),
      406,
      "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange " +
        "'amq.direct' in vhost '/': received 'false' but current is 'true'",
    );
  });

  it('cannot be deleted (403)', () => {
    const { table } = tableWith();
    assertRefused(
      () => table.delete('amq.direct'),
      403,
      "ACCESS_REFUSED - deletion of system exchange 'amq.direct' " +
        "in vhost '/' not allowed",
    );
    assert.ok(table.get('amq.direct'));
  });

  it('reserve the amq. prefix: no client creates one (403)', () => {
    const { table } = tableWith();
    assertRefused(
      () => table.declare({ name: 'amq.custom', type: 'direct' }),
      403,
      "ACCESS_REFUSED - exchange name 'amq.custom' contains reserved prefix 'amq.*'",
    );
    assertRefused(
      () => table.delete('amq.custom'),
      403,
      "ACCESS_REFUSED - deletion of system exchange 'amq.custom' " +
        "in vhost '/' not allowed",
    );
    assert.equal(table.get('amq.custom'), undefined);
  });
});

describe('the default exchange', () => {
  const refused = "ACCESS_REFUSED - operation not permitted on the default exchange";

  it('cannot be declared, even as what it is, nor passively', () => {
    const { table } = tableWith();
    const asItIs = { name: '', type: 'direct', durable: true };
    assertRefused(() => table.declare(asItIs), 403, refused);
    assertRefused(() => table.declare({ name: '', type: 'fanout' }), 403, refused);
    assertRefused(() => table.declarePassive(''), 403, refused);
  });

  it('cannot be deleted, bound or unbound, at either end', () => {
    const { table } = tableWith('orders');
    table.declare({ name: 'e', type: 'fanout' });
    assertRefused(() => table.delete(''), 403, refused);
    const implicit = { source: '', ...q('orders', 'orders') };
    assertRefused(() => table.bind(implicit), 403, refused);
    assertRefused(() => table.unbind(implicit), 403, refused);
    assertRefused(() => table.bind({ source: 'e', ...x('') }), 403, refused);
    assertRefused(() => table.unbind({ source: 'e', ...x('') }), 403, refused);
    assert.deepEqual(table.bindings(), []);
  });

  it('routes to the queue named by the key, if there is one', () => {
    const { table, queues } = tableWith('orders');
    assert.deepEqual(sorted(table.route('', 'orders')), ['orders']);
    assert.deepEqual(sorted(table.route('', 'missing')), []);
    queues.names.delete('orders');
    assert.deepEqual(sorted(table.route('', 'orders')), []);
  });
});

describe('declare', () => {
  it('creates with the defaults, then returns the same exchange', () => {
    const { table } = tableWith();
    const logs = table.declare({ name: 'logs', type: 'topic' });
    assert.deepEqual(
      { ...logs, arguments: [...logs.arguments] },
      { name: 'logs', type: 'topic', durable: false, autoDelete: false,
        internal: false, arguments: [] },
    );
    assert.equal(table.declare({ name: 'logs', type: 'topic' }), logs);
    assert.equal(table.get('logs'), logs);
  });

  it('names the first setting that differs, as RabbitMQ does', () => {
    const { table } = tableWith();
    table.declare({ name: 'logs', type: 'direct' });
    const prefix = "PRECONDITION_FAILED - inequivalent arg";
    const where = "for exchange 'logs' in vhost '/'";
    const logs = { name: 'logs', type: 'direct' };
    assertRefused(() => table.declare({ ...logs, type: 'fanout' }), 406,
      `${prefix} 'type' ${where}: received 'fanout' but current is 'direct'`);
    assertRefused(() => table.declare({ ...logs, durable: true }), 406,
      `${prefix} 'durable' ${where}: received 'true' but current is 'false'`);
    assertRefused(() => table.declare({ ...logs, autoDelete: true }), 406,
      `${prefix} 'auto_delete' ${where}: ` +
        "received 'true' but current is 'false'");
    assertRefused(() => table.declare({ ...logs, internal: true }), 406,
      `${prefix} 'internal' ${where}: received 'true' but current is 'false'`);
  });

  it('compares arguments by name, value and type, in any order', () => {
    const { table } = tableWith();
    const args = { 'alternate-exchange': 'ae', 'x-n': 5 };
    table.declare({ name: 'logs', type: 'direct', arguments: args });
    const where = "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' " +
      "for exchange 'logs' in vhost '/'";

    const logs = { name: 'logs', type: 'direct' };
    const reordered = new Map<string, unknown>(
      [['x-n', 5n], ['alternate-exchange', 'ae']]);
    assert.ok(table.declare({ ...logs, arguments: reordered }));
    assertRefused(
      () => table.declare({ ...logs, arguments: { 'x-n': 5 } }), 406,
      `${where}: received none but current is the value 'ae' of type 'string'`);
    assertRefused(
      () => table.declare({ name: 'logs', type: 'direct',
        arguments: { 'alternate-exchange': 'other', 'x-n': 5 } }), 406,
      `${where}: received the value 'other' of type 'string' ` +
        "but current is the value 'ae' of type 'string'");
    assertRefused(
      () => table.declare({ ...logs, arguments: { ...args, 'x-n': '5' } }),
      406,
      "PRECONDITION_FAILED - inequivalent arg 'x-n' for exchange 'logs' " +
        "in vhost '/': received the value '5' of type 'string' " +
        "but current is the value '5' of type 'integer'");
    assertRefused(
      () => table.declare({ ...logs, arguments: { ...args, extra: true } }),
      406,
      "PRECONDITION_FAILED - inequivalent arg 'extra' for exchange 'logs' " +
        "in vhost '/': received the value 'true' of type 'boolean' " +
        'but current is none');
  });

  it('keeps its own copy of the arguments', () => {
    const { table } = tableWith();
    const args: Record<string, unknown> = { nested: { a: 1 } };
    table.declare({ name: 'logs', type: 'direct', arguments: args });
    (args.nested as Record<string, unknown>).a = 2;
    args.more = 1;
    const stored = table.get('logs')?.arguments;
    assert.deepEqual([...(stored ?? [])], [['nested', new Map([['a', 1]])]]);
  });

  it('refuses unknown types (503) and bad arguments (406)', () => {
    const { table } = tableWith();
    assertRefused(() => table.declare({ name: 'd', type: 'x-delayed-message' }), 503,
      "COMMAND_INVALID - unknown exchange type 'x-delayed-message'");
    assertRefused(() => table.declare({ name: 'd', type: 'direct',
      arguments: { 'alternate-exchange': 7 } }), 406,
      "PRECONDITION_FAILED - invalid type 'integer' for arg 'alternate-exchange' " +
        "in exchange 'd' in vhost '/'");
    assertRefused(() => table.declare({ name: 'd', type: 'direct',
      arguments: { f: () => 1 } }), 406,
      "PRECONDITION_FAILED - arg 'f' for exchange 'd' in vhost '/' has a value " +
        "of unsupported type 'function'");
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    assert.throws(
      () => table.declare({ name: 'd', type: 'direct', arguments: { deep } }),
      PreconditionFailedError,
    );
    assert.equal(table.get('d'), undefined);
  });

  it('passive: 404 when missing, the exchange when there', () => {
    const { table } = tableWith();
    assertRefused(() => table.declarePassive('nope'), 404,
      "NOT_FOUND - no exchange 'nope' in vhost '/'");
    const logs = table.declare({ name: 'logs', type: 'fanout' });
    assert.equal(table.declarePassive('logs'), logs);
    assert.equal(table.declarePassive('amq.topic').type, 'topic');
  });

  it('names the vhost it was made for', () => {
    const table = new ExchangeTable(new FakeQueues(), { vhost: 'shop' });
    assertRefused(() => table.declarePassive('nope'), 404,
      "NOT_FOUND - no exchange 'nope' in vhost 'shop'");
  });

  it('gives errors with stable codes', () => {
    const { table } = tableWith();
    try {
      table.declarePassive('nope');
      assert.fail('no error');
    } catch (err) {
      assert.ok(err instanceof RoutingError);
      assert.equal(err.code, 'AMQP_NOT_FOUND');
      assert.equal(err.name, 'NotFoundError');
      assert.equal(err.message, "no exchange 'nope' in vhost '/'");
    }
  });
});

describe('delete', () => {
  it('removes the exchange and its bindings both ways', () => {
    const { table } = tableWith('a', 'b');
    table.declare({ name: 'up', type: 'fanout' });
    table.declare({ name: 'mid', type: 'fanout' });
    table.bind({ source: 'up', ...x('mid') });
    table.bind({ source: 'mid', ...q('a') });
    table.bind({ source: 'mid', ...q('b') });

    const removal = table.delete('mid');
    assert.deepEqual(removal.exchanges.map((e) => e.name), ['mid']);
    const removed = removal.bindings.map((b) => `${b.source}>${b.destination}`);
    assert.deepEqual(removed.sort(), ['mid>a', 'mid>b', 'up>mid']);
    assert.equal(table.get('mid'), undefined);
    assert.deepEqual(table.bindings(), []);
    assert.deepEqual(sorted(table.route('up', '')), []);
  });

  it('succeeds with nothing removed when the exchange is not there', () => {
    const { table } = tableWith();
    assert.deepEqual(table.delete('never'), { exchanges: [], bindings: [] });
  });

  it('if-unused refuses while the exchange is a source (406)', () => {
    const { table } = tableWith('q');
    table.declare({ name: 'logs', type: 'fanout' });
    table.declare({ name: 'feeder', type: 'fanout' });
    table.bind({ source: 'feeder', ...x('logs') });
    table.bind({ source: 'logs', ...q('q') });

    assertRefused(() => table.delete('logs', { ifUnused: true }), 406,
      "PRECONDITION_FAILED - exchange 'logs' in vhost '/' in use");
    assert.ok(table.get('logs'));

    table.unbind({ source: 'logs', ...q('q') });
    const removal = table.delete('logs', { ifUnused: true });
    assert.deepEqual(removal.exchanges.map((e) => e.name), ['logs']);
    assert.deepEqual(removal.bindings.map((b) => b.source), ['feeder']);
  });
});

describe('bind and unbind', () => {
  it('adds a binding once; other keys or arguments make others', () => {
    const { table } = tableWith('q');
    table.declare({ name: 'd', type: 'direct' });
    assert.equal(table.bind({ source: 'd', ...q('q', 'k') }), true);
    assert.equal(table.bind({ source: 'd', ...q('q', 'k') }), false);
    assert.equal(table.bind({ source: 'd', ...q('q', 'k'), arguments: {} }), false);
    const k = { source: 'd', ...q('q', 'k') };
    assert.equal(table.bind({ ...k, arguments: { a: 1 } }), true);
    assert.equal(table.bind({ ...k, arguments: { a: 1n } }), true);
    assert.equal(table.bind({ source: 'd', ...q('q', 'other') }), true);
    assert.equal(table.bindings().length, 4);
  });

  it('404 for a missing source, queue or destination exchange', () => {
    const { table } = tableWith('q');
    table.declare({ name: 'd', type: 'direct' });
    for (const op of ['bind', 'unbind'] as const) {
      assertRefused(() => table[op]({ source: 'nope', ...q('q') }), 404,
        "NOT_FOUND - no exchange 'nope' in vhost '/'");
      assertRefused(() => table[op]({ source: 'nope', ...q('missing') }), 404,
        "NOT_FOUND - no exchange 'nope' in vhost '/'");
      assertRefused(() => table[op]({ source: 'd', ...q('missing') }), 404,
        "NOT_FOUND - no queue 'missing' in vhost '/'");
      assertRefused(() => table[op]({ source: 'd', ...x('missing') }), 404,
        "NOT_FOUND - no exchange 'missing' in vhost '/'");
    }
  });

  it('unbinds only the binding with the same key and arguments', () => {
    const { table } = tableWith('q');
    table.declare({ name: 'd', type: 'direct' });
    table.bind({ source: 'd', ...q('q', 'k'), arguments: { a: 1 } });

    const k = { source: 'd', ...q('q', 'k') };
    assert.deepEqual(table.unbind(k).bindings, []);
    assert.deepEqual(table.unbind({ ...k, arguments: { a: '1' } }).bindings, []);
    const removal = table.unbind({ ...k, arguments: { a: 1 } });
    const removed = removal.bindings.map((b) => [b.routingKey, [...b.arguments]]);
    assert.deepEqual(removed, [['k', [['a', 1]]]]);
    assert.deepEqual(table.bindings(), []);
    assert.deepEqual(sorted(table.route('d', 'k')), []);
  });

  it('binds to and from the built-ins', () => {
    const { table } = tableWith('q');
    table.declare({ name: 'mine', type: 'fanout' });
    assert.equal(table.bind({ source: 'amq.topic', ...x('mine', 'a.#') }), true);
    assert.equal(table.bind({ source: 'mine', ...x('amq.direct') }), true);
    assert.equal(table.bind({ source: 'amq.direct', ...q('q', 'a.b') }), true);
    assert.deepEqual(sorted(table.route('amq.topic', 'a.b')), ['q']);
  });
});

describe('auto-delete', () => {
  function setup() {
    const made = tableWith('q1', 'q2');
    made.table.declare({ name: 'auto', type: 'direct', autoDelete: true });
    return made;
  }

  it('keeps an exchange that never had a binding', () => {
    const { table } = setup();
    assert.ok(table.get('auto'));
    assert.deepEqual(table.queueDeleted('q1'), { exchanges: [], bindings: [] });
    assert.ok(table.get('auto'));
  });

  it('removes the exchange with its last binding as source', () => {
    const { table } = setup();
    table.bind({ source: 'auto', ...q('q1', 'a') });
    table.bind({ source: 'auto', ...q('q2', 'b') });
    assert.deepEqual(table.unbind({ source: 'auto', ...q('q1', 'a') }).exchanges, []);
    assert.ok(table.get('auto'));

    const removal = table.unbind({ source: 'auto', ...q('q2', 'b') });
    assert.deepEqual(removal.exchanges.map((e) => e.name), ['auto']);
    assert.equal(table.get('auto'), undefined);
  });

  it('keeps the exchange while it is only a destination', () => {
    const { table } = setup();
    table.declare({ name: 'feeder', type: 'fanout' });
    table.bind({ source: 'feeder', ...x('auto') });
    table.bind({ source: 'auto', ...q('q1') });
    table.unbind({ source: 'auto', ...q('q1') });
    assert.equal(table.get('auto'), undefined);
    assert.deepEqual(table.bindings(), []);
  });

  it('follows a deleted queue: its bindings go, and emptied sources', () => {
    const { table } = setup();
    table.declare({ name: 'plain', type: 'direct' });
    table.bind({ source: 'auto', ...q('q1', 'a') });
    table.bind({ source: 'auto', ...q('q1', 'b') });
    table.bind({ source: 'plain', ...q('q1') });
    table.bind({ source: 'plain', ...q('q2') });

    const removal = table.queueDeleted('q1');
    assert.deepEqual(removal.exchanges.map((e) => e.name), ['auto']);
    assert.equal(removal.bindings.length, 3);
    assert.ok(table.get('plain'));
    assert.deepEqual(table.bindings().map((b) => b.destination), ['q2']);
  });

  it('cascades along auto-delete exchanges bound to each other', () => {
    const { table } = tableWith('q', 'other');
    for (const name of ['top', 'mid', 'low']) {
      table.declare({ name, type: 'fanout', autoDelete: true });
    }
    table.declare({ name: 'kept', type: 'fanout', autoDelete: true });
    table.bind({ source: 'top', ...x('mid') });
    table.bind({ source: 'mid', ...x('low') });
    table.bind({ source: 'low', ...q('q') });
    table.bind({ source: 'kept', ...x('mid') });
    table.bind({ source: 'kept', ...q('other') });

    const removal = table.queueDeleted('q');
    assert.deepEqual(removal.exchanges.map((e) => e.name), ['low', 'mid', 'top']);
    const left = table.list().map((e) => e.name);
    assert.deepEqual(left.filter((n) => n !== '' && !n.startsWith('amq.')),
      ['kept']);
    const bound = table.bindings().map((b) => `${b.source}>${b.destination}`);
    assert.deepEqual(bound, ['kept>other']);
  });

  it('cascades from a deleted exchange to auto-delete sources', () => {
    const { table } = tableWith();
    table.declare({ name: 'src', type: 'fanout', autoDelete: true });
    table.declare({ name: 'dst', type: 'fanout' });
    table.bind({ source: 'src', ...x('dst') });
    const removal = table.delete('dst');
    assert.deepEqual(removal.exchanges.map((e) => e.name), ['dst', 'src']);
  });

  it('survives an auto-delete exchange bound to itself', () => {
    const { table } = tableWith();
    table.declare({ name: 'loop', type: 'fanout', autoDelete: true });
    table.bind({ source: 'loop', ...x('loop') });
    assert.deepEqual(sorted(table.route('loop', '')), []);
    const removal = table.unbind({ source: 'loop', ...x('loop') });
    assert.deepEqual(removal.exchanges.map((e) => e.name), ['loop']);
  });
});
