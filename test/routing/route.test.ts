// route(): each exchange type through the table, exchange-to-exchange
// chains (cycles, diamonds, self-loops), alternate exchanges, internal
// exchanges, and queues leaving.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { assertRefused, sorted, tableWith } from './helpers.js';

const q = (destination: string, routingKey = '') =>
  ({ destination, destinationKind: 'queue' as const, routingKey });
const x = (destination: string, routingKey = '') =>
  ({ destination, destinationKind: 'exchange' as const, routingKey });

describe('route by exchange type', () => {
  it('direct: the exact key, to every queue bound with it', () => {
    const { table } = tableWith('a', 'b', 'c');
    table.declare({ name: 'd', type: 'direct' });
    table.bind({ source: 'd', ...q('a', 'red') });
    table.bind({ source: 'd', ...q('b', 'red') });
    table.bind({ source: 'd', ...q('c', 'blue') });
    table.bind({ source: 'd', ...q('c', '') });
    assert.deepEqual(sorted(table.route('d', 'red')), ['a', 'b']);
    assert.deepEqual(sorted(table.route('d', 'blue')), ['c']);
    assert.deepEqual(sorted(table.route('d', '')), ['c']);
    assert.deepEqual(sorted(table.route('d', 'Red')), []);
    assert.deepEqual(sorted(table.route('d', 'red.x')), []);
  });

  it('fanout: every bound queue, whatever the key', () => {
    const { table } = tableWith('a', 'b');
    table.declare({ name: 'f', type: 'fanout' });
    table.bind({ source: 'f', ...q('a', 'ignored') });
    table.bind({ source: 'f', ...q('b') });
    assert.deepEqual(sorted(table.route('f', 'anything')), ['a', 'b']);
    assert.deepEqual(sorted(table.route('f', '')), ['a', 'b']);
  });

  it('topic: tutorial 5, each queue once', () => {
    const { table } = tableWith('Q1', 'Q2');
    table.declare({ name: 'topic_logs', type: 'topic' });
    table.bind({ source: 'topic_logs', ...q('Q1', '*.orange.*') });
    table.bind({ source: 'topic_logs', ...q('Q2', '*.*.rabbit') });
    table.bind({ source: 'topic_logs', ...q('Q2', 'lazy.#') });
    const expected: Record<string, string[]> = {
      'quick.orange.rabbit': ['Q1', 'Q2'],
      'lazy.orange.elephant': ['Q1', 'Q2'],
      'quick.orange.fox': ['Q1'],
      'lazy.brown.fox': ['Q2'],
      'lazy.pink.rabbit': ['Q2'],
      'quick.brown.fox': [],
      orange: [],
      'quick.orange.male.rabbit': [],
      'lazy.orange.male.rabbit': ['Q2'],
    };
    for (const [key, queues] of Object.entries(expected)) {
      assert.deepEqual(sorted(table.route('topic_logs', key)), queues, key);
    }
  });

  it('no bindings, no queues', () => {
    const { table } = tableWith();
    for (const type of ['direct', 'fanout', 'topic', 'headers']) {
      table.declare({ name: type, type });
      assert.deepEqual(sorted(table.route(type, 'k', { a: 1 })), [], type);
    }
  });
});

describe('route refusals', () => {
  it('404 for an exchange that is not there', () => {
    const { table } = tableWith();
    assertRefused(() => table.route('nope', 'k'), 404,
      "NOT_FOUND - no exchange 'nope' in vhost '/'");
  });

  it('403 for publishing to an internal exchange, which others still reach', () => {
    const { table } = tableWith('q');
    table.declare({ name: 'inside', type: 'fanout', internal: true });
    table.declare({ name: 'front', type: 'fanout' });
    table.bind({ source: 'front', ...x('inside') });
    table.bind({ source: 'inside', ...q('q') });
    assertRefused(() => table.route('inside', 'k'), 403,
      "ACCESS_REFUSED - cannot publish to internal exchange 'inside' in vhost '/'");
    assert.deepEqual(sorted(table.route('front', 'k')), ['q']);
  });
});

describe('exchange-to-exchange bindings', () => {
  it('filter with the same routing key at each hop', () => {
    const { table } = tableWith('errors', 'all', 'eu');
    table.declare({ name: 'in', type: 'topic' });
    table.declare({ name: 'sev', type: 'direct' });
    table.declare({ name: 'everything', type: 'fanout' });
    table.bind({ source: 'in', ...x('sev', 'eu.#') });
    table.bind({ source: 'in', ...x('everything', '#') });
    table.bind({ source: 'in', ...q('eu', 'eu.*') });
    table.bind({ source: 'sev', ...q('errors', 'eu.error') });
    table.bind({ source: 'everything', ...q('all') });

    assert.deepEqual(sorted(table.route('in', 'eu.error')), ['all', 'errors', 'eu']);
    assert.deepEqual(sorted(table.route('in', 'eu.info')), ['all', 'eu']);
    assert.deepEqual(sorted(table.route('in', 'us.error')), ['all']);
  });

  it('end on a cycle, delivering each queue once', () => {
    const { table } = tableWith('qa', 'qb', 'qc');
    for (const name of ['a', 'b', 'c']) table.declare({ name, type: 'fanout' });
    table.bind({ source: 'a', ...x('b') });
    table.bind({ source: 'b', ...x('c') });
    table.bind({ source: 'c', ...x('a') });
    table.bind({ source: 'a', ...q('qa') });
    table.bind({ source: 'b', ...q('qb') });
    table.bind({ source: 'c', ...q('qc') });
    for (const start of ['a', 'b', 'c']) {
      assert.deepEqual(sorted(table.route(start, 'k')), ['qa', 'qb', 'qc'], start);
    }
  });

  it('end on an exchange bound to itself', () => {
    const { table } = tableWith('q');
    table.declare({ name: 'self', type: 'topic' });
    table.bind({ source: 'self', ...x('self', '#') });
    table.bind({ source: 'self', ...q('q', 'a.*') });
    assert.deepEqual(sorted(table.route('self', 'a.b')), ['q']);
    assert.deepEqual(sorted(table.route('self', 'b')), []);
  });

  it('visit an exchange reached two ways once', () => {
    const { table } = tableWith('q');
    for (const name of ['top', 'left', 'right', 'bottom']) {
      table.declare({ name, type: 'fanout' });
    }
    table.bind({ source: 'top', ...x('left') });
    table.bind({ source: 'top', ...x('right') });
    table.bind({ source: 'left', ...x('bottom') });
    table.bind({ source: 'right', ...x('bottom') });
    table.bind({ source: 'bottom', ...q('q') });
    assert.deepEqual(sorted(table.route('top', '')), ['q']);
  });
});

describe('alternate exchanges', () => {
  function setup() {
    const made = tableWith('bound', 'unrouted');
    made.table.declare({ name: 'ae', type: 'fanout' });
    made.table.declare({ name: 'main', type: 'direct',
      arguments: { 'alternate-exchange': 'ae' } });
    made.table.bind({ source: 'main', ...q('bound', 'k') });
    made.table.bind({ source: 'ae', ...q('unrouted') });
    return made;
  }

  it('take what the exchange matches nothing for', () => {
    const { table } = setup();
    assert.deepEqual(sorted(table.route('main', 'k')), ['bound']);
    assert.deepEqual(sorted(table.route('main', 'other')), ['unrouted']);
  });

  it('count a match to an exchange as a match', () => {
    const { table } = setup();
    table.declare({ name: 'empty', type: 'fanout' });
    table.bind({ source: 'main', ...x('empty', 'to-empty') });
    assert.deepEqual(sorted(table.route('main', 'to-empty')), []);
  });

  it('are skipped when missing, and end when they loop', () => {
    const { table } = tableWith('q');
    table.declare({ name: 'lost', type: 'direct',
      arguments: { 'alternate-exchange': 'never-declared' } });
    assert.deepEqual(sorted(table.route('lost', 'k')), []);

    const ae = (name: string) => ({ 'alternate-exchange': name });
    table.declare({ name: 'p', type: 'direct', arguments: ae('r') });
    table.declare({ name: 'r', type: 'direct', arguments: ae('p') });
    table.bind({ source: 'r', ...q('q', 'yes') });
    assert.deepEqual(sorted(table.route('p', 'no')), []);
    assert.deepEqual(sorted(table.route('p', 'yes')), ['q']);
  });
});

describe('queues leaving', () => {
  it('a deleted queue is routed to no more', () => {
    const { table, queues } = tableWith('a', 'b');
    table.declare({ name: 'f', type: 'fanout' });
    table.bind({ source: 'f', ...q('a') });
    table.bind({ source: 'f', ...q('b') });
    queues.names.delete('a');
    const removal = table.queueDeleted('a');
    assert.deepEqual(removal.bindings.map((b) => b.destination), ['a']);
    assert.deepEqual(sorted(table.route('f', '')), ['b']);
  });
});
