// The 406 of a queue redeclared with other arguments names the argument
// the client sent, with both values in that argument's terms (RabbitMQ's
// wording), not Usher's setting.

import assert from 'node:assert/strict';
import { it } from 'node:test';

import { tableFrom, type PlainValue } from '../../src/amqp/field-table.js';
import { settingsFromArguments } from '../../src/amqp/mapping.js';
import { checkQueueEquivalent } from '../../src/amqp/queue-equivalence.js';
import { resolveSettings } from '../../src/broker/settings.js';

/** The text of the 406 a redeclare with `asked` gets from a queue made with `made`. */
type Args = Record<string, PlainValue>;

function refusal(made: Args, asked: Args): string | null {
  const madeWith = settingsFromArguments(tableFrom(made));
  const current = resolveSettings('q', { maxAttempts: 0, ...madeWith });
  const sent = tableFrom(asked);
  const input = settingsFromArguments(sent);
  const merged = resolveSettings('q', {
    ...current,
    ...input,
    backoff: { ...current.backoff, ...input.backoff },
  });
  try {
    checkQueueEquivalent('q', current, merged, sent);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

const WHERE = "for queue 'q' in vhost '/'";

it('names the argument and its values as the client wrote them', () => {
  assert.equal(refusal({ 'x-message-ttl': 60000 }, { 'x-message-ttl': 30000 }),
    `inequivalent arg 'x-message-ttl' ${WHERE}: received '30000' but current is '60000'`);
  assert.equal(refusal({ 'x-max-length': 5 }, { 'x-max-length': 6 }),
    `inequivalent arg 'x-max-length' ${WHERE}: received '6' but current is '5'`);
  assert.equal(refusal({ 'x-max-length-bytes': 5 }, { 'x-max-length-bytes': 6 }),
    `inequivalent arg 'x-max-length-bytes' ${WHERE}: received '6' but current is '5'`);
  assert.equal(refusal({}, { 'x-usher-backoff-initial': 10 }),
    `inequivalent arg 'x-usher-backoff-initial' ${WHERE}: received '10' but current is '1000'`);
});

it('x-delivery-limit counts redeliveries: current is read back in its terms', () => {
  assert.equal(refusal({ 'x-delivery-limit': 3 }, { 'x-delivery-limit': 4 }),
    `inequivalent arg 'x-delivery-limit' ${WHERE}: received '4' but current is '3'`);
  assert.equal(refusal({}, { 'x-delivery-limit': 4 }),
    `inequivalent arg 'x-delivery-limit' ${WHERE}: received '4' but current is none`);
  assert.equal(refusal({}, { 'x-usher-max-attempts': 4 }),
    `inequivalent arg 'x-usher-max-attempts' ${WHERE}: received '4' but current is '0'`);
});

it('x-overflow in RabbitMQ words; a default the client did not name is none', () => {
  const dlx = { 'x-max-length': 1, 'x-overflow': 'reject-publish-dlx' };
  assert.equal(refusal(dlx, { 'x-max-length': 1, 'x-overflow': 'drop-head' }),
    `inequivalent arg 'x-overflow' ${WHERE}: received 'drop-head' but current is ` +
      "'reject-publish-dlx'");
  // x-max-length alone asks for RabbitMQ's default overflow, drop-head.
  assert.equal(refusal(dlx, { 'x-max-length': 1 }),
    `inequivalent arg 'x-overflow' ${WHERE}: received none but current is 'reject-publish-dlx'`);
  assert.equal(refusal({ 'x-max-length': 1 }, { 'x-usher-overflow': 'reject-lowest-priority' }),
    `inequivalent arg 'x-usher-overflow' ${WHERE}: received 'reject-lowest-priority' but ` +
      "current is 'drop-head'");
});

it('the same arguments again, or none, pass', () => {
  const args = { 'x-message-ttl': 100, 'x-max-length': 2, 'x-overflow': 'reject-publish-dlx' };
  assert.equal(refusal(args, args), null);
  assert.equal(refusal(args, {}), null);
});
