// Which storage and placement hints a redeclare is compared on, by the
// queue's type, as RabbitMQ 3.10 compares them (its answers are in
// test/amqp/compat/cases-topology.ts, run against both brokers).

import assert from 'node:assert/strict';
import { it } from 'node:test';

import { type FieldTable, type PlainValue, tableFrom } from '../../src/amqp/field-table.js';
import { checkHintsEquivalent, hintsFromArguments } from '../../src/amqp/queue-hints.js';

type Args = Record<string, PlainValue>;

/** The text of the 406 a redeclare with `asked` gets from a queue made with `made`. */
function refusal(made: Args | FieldTable, asked: Args | FieldTable): string | null {
  const table = (args: Args | FieldTable) => (args instanceof Map ? args : tableFrom(args as Args));
  try {
    checkHintsEquivalent('q', hintsFromArguments(table(made)), hintsFromArguments(table(asked)));
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

const WHERE = "for queue 'q' in vhost '/'";
const QUORUM = { 'x-queue-type': 'quorum' };

it("compares a classic queue's mode, version and master locator, one left out included", () => {
  const hints = {
    'x-queue-mode': 'lazy', 'x-queue-version': 2, 'x-queue-master-locator': 'random',
  };
  assert.equal(refusal(hints, hints), null);
  assert.equal(refusal(hints, { ...hints, 'x-queue-mode': 'default' }),
    `inequivalent arg 'x-queue-mode' ${WHERE}: received 'default' but current is 'lazy'`);
  assert.equal(refusal(hints, { ...hints, 'x-queue-version': 1 }),
    `inequivalent arg 'x-queue-version' ${WHERE}: received '1' but current is '2'`);
  assert.equal(refusal(hints, { 'x-queue-mode': 'lazy', 'x-queue-version': 2 }),
    `inequivalent arg 'x-queue-master-locator' ${WHERE}: received none but current is ` +
      "the value 'random' of type 'longstr'");
  assert.equal(refusal({}, { 'x-queue-version': 1 }),
    `inequivalent arg 'x-queue-version' ${WHERE}: received the value '1' of type ` +
      "'signedint' but current is none");
});

it("leaves a quorum queue's hints out of a classic queue's redeclare, and the other way", () => {
  const quorumOnly = {
    'x-queue-leader-locator': 'random', 'x-quorum-initial-group-size': 3,
    'x-max-in-memory-length': 5, 'x-max-in-memory-bytes': 5,
    'x-dead-letter-strategy': 'at-most-once',
  };
  assert.equal(refusal({}, quorumOnly), null);
  const classicOnly = {
    'x-queue-mode': 'lazy', 'x-queue-version': 1, 'x-queue-master-locator': 'random',
  };
  assert.equal(refusal(QUORUM, { ...QUORUM, ...classicOnly }), null);
});

it("compares a quorum queue's locator, group size, in-memory limits and strategy", () => {
  const hints = {
    ...QUORUM, 'x-queue-leader-locator': 'random', 'x-quorum-initial-group-size': 3,
    'x-max-in-memory-length': 5, 'x-max-in-memory-bytes': 64,
    'x-dead-letter-strategy': 'at-most-once',
  };
  assert.equal(refusal(hints, hints), null);
  for (const [name, other] of [
    ['x-queue-leader-locator', 'least-leaders'],
    ['x-quorum-initial-group-size', 5],
    ['x-max-in-memory-length', 6],
    ['x-max-in-memory-bytes', 65],
    ['x-dead-letter-strategy', 'at-least-once'],
  ] as const) {
    assert.equal(refusal(hints, { ...hints, [name]: other }),
      `inequivalent arg '${name}' ${WHERE}: received '${other}' but current is ` +
        `'${hints[name]}'`);
  }
  assert.equal(refusal(QUORUM, { ...QUORUM, 'x-quorum-initial-group-size': 3 }),
    `inequivalent arg 'x-quorum-initial-group-size' ${WHERE}: received the value '3' of ` +
      "type 'signedint' but current is none");
});

it("x-queue-type 'classic' is none; any other change of type is refused", () => {
  assert.equal(refusal({}, { 'x-queue-type': 'classic' }), null);
  assert.equal(refusal({ 'x-queue-type': 'classic' }, {}), null);
  assert.equal(refusal({}, QUORUM),
    `inequivalent arg 'x-queue-type' ${WHERE}: received the value 'quorum' of type 'longstr' ` +
      'but current is none');
  assert.equal(refusal(QUORUM, {}),
    `inequivalent arg 'x-queue-type' ${WHERE}: received none but current is the value ` +
      "'quorum' of type 'longstr'");
  assert.equal(refusal(QUORUM, { 'x-queue-type': 'classic' }),
    `inequivalent arg 'x-queue-type' ${WHERE}: received 'classic' but current is 'quorum'`);
});

it('integers of any width are one type, as in RabbitMQ; a float is another', () => {
  const version = (type: 'b' | 'l' | 'd', value: number | bigint) =>
    new Map([['x-queue-version', { type, value } as never]]) as FieldTable;
  assert.equal(refusal(version('b', 2), version('l', 2n)), null);
  assert.equal(refusal(version('b', 2), version('d', 2)),
    `inequivalent arg 'x-queue-version' ${WHERE}: received '2' but current is '2'`);
});

it('keeps only the hints, with their wire types, as JSON keeps them', () => {
  const hints = hintsFromArguments(tableFrom({
    'x-queue-mode': 'lazy', 'x-max-in-memory-bytes': 2n ** 40n, 'x-message-ttl': 5,
  }));
  assert.deepEqual(hints, {
    'x-queue-mode': { type: 'S', value: 'lazy' },
    'x-max-in-memory-bytes': { type: 'l', value: 2 ** 40 },
  });
  assert.deepEqual(JSON.parse(JSON.stringify(hints)), hints);
  assert.equal(hintsFromArguments(tableFrom({ 'x-message-ttl': 5 })), undefined);
});
