// The demo's input: events in exactly the example's format, distinct where
// a real sale would have them distinct, and a deterministic handful of
// malformed ones that the services' check refuses.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import {
  checkPurchase,
  generatePurchases,
  malformedCount,
  malformedIndexes,
  purchaseEvent,
} from '../../src/demo/ticketing/purchases.js';
import { chance, hashText } from '../../src/demo/ticketing/random.js';

// dist/test/demo/ -> the source fixture, a copy of
// /work/shared/examples/ticket-purchased.json.
const FIXTURE = '../../../test/demo/fixtures/ticket-purchased.json';
const example: unknown = JSON.parse(
  readFileSync(new URL(FIXTURE, import.meta.url), 'utf8'),
);

/** `data.user.email:string`, ... for every leaf of a JSON value. */
function shape(value: unknown, path = ''): string[] {
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, child]) =>
      shape(child, path ? `${path}.${key}` : key),
    );
  }
  return [`${path}:${typeof value}`];
}

describe('generated purchases', () => {
  const purchases = generatePurchases(2_000, 1);
  const events = purchases.map((p) => JSON.parse(p.json));
  const good = events.filter((_, i) => purchases[i].defect === null);

  it('have exactly the fields and types of the example', () => {
    const expected = shape(example).sort();
    for (const event of good) assert.deepEqual(shape(event).sort(), expected);
  });

  it('write the price with two decimals and weigh about as much', () => {
    const text = purchases[0].json;
    assert.match(text, /"amount":89\.00,"currency":"EUR"/);
    assert.match(text, /"timestamp":"2025-10-06T14:32:00Z"/);
    for (const { json } of purchases.slice(0, 100)) {
      assert.ok(json.length > 380 && json.length < 500, `${json.length} bytes`);
    }
  });

  it('give every buyer distinct ticket, user, mail, seat, payment', () => {
    const distinct = (pick: (e: (typeof good)[number]) => string) =>
      new Set(good.map(pick)).size;
    assert.equal(distinct((e) => e.data.ticket_id), good.length);
    assert.equal(distinct((e) => e.data.user.user_id), good.length);
    assert.equal(distinct((e) => e.data.user.email), good.length);
    assert.equal(distinct((e) => e.data.payment.transaction_id), good.length);
    assert.equal(
      distinct(({ data: { seat } }) =>
        `${seat.section}/${seat.row}/${seat.seat_number}`,
      ),
      good.length,
    );
  });

  it('are the same for the same seed', () => {
    assert.deepEqual(generatePurchases(50, 7), generatePurchases(50, 7));
    assert.deepEqual(purchaseEvent(3, 1), events[3]);
  });

  it('pass the services check unless malformed', () => {
    purchases.forEach((purchase, i) => {
      const problem = checkPurchase(events[i]);
      if (purchase.defect === null) {
        assert.equal(problem, null, purchase.ticketId);
      } else {
        assert.match(problem ?? '', new RegExp(purchase.ticketId));
      }
    });
  });
});

describe('malformed purchases', () => {
  it('are a handful, spread over the run, for any size', () => {
    assert.equal(malformedCount(1), 1);
    assert.equal(malformedCount(300), 3);
    assert.equal(malformedCount(10_000), 9);
    assert.equal(malformedCount(1_000_000), 9);
    assert.deepEqual([...malformedIndexes(300).keys()], [50, 150, 250]);
    assert.deepEqual(
      [...malformedIndexes(300).values()],
      ['missing-email', 'missing-seat', 'missing-payment-id'],
    );
  });

  it('each lack what their defect says', () => {
    const defective = generatePurchases(300, 1).filter((p) => p.defect !== null);
    const [email, seat, payment] = defective.map((p) => JSON.parse(p.json));
    assert.equal(email.data.user.email, undefined);
    assert.equal(seat.data.seat, undefined);
    assert.equal(payment.data.payment.transaction_id, '');
  });

  it('refuse bodies that are not purchases at all', () => {
    assert.equal(checkPurchase('text'), 'body is not a JSON object');
    assert.match(
      checkPurchase({ event: 'REFUND' }) ?? '',
      /unexpected event "REFUND"/,
    );
  });
});

describe('draws', () => {
  it('depend on the seed and parts only, and spread over [0, 1)', () => {
    assert.equal(chance(1, 2, 3), chance(1, 2, 3));
    assert.notEqual(chance(1, 2, 3), chance(2, 2, 3));
    assert.notEqual(hashText('TCKT-1'), hashText('TCKT-2'));

    const draws = Array.from({ length: 10_000 }, (_, i) => chance(9, i));
    const low = draws.filter((d) => d < 0.15).length;
    assert.ok(draws.every((d) => d >= 0 && d < 1));
    assert.ok(low > 1_300 && low < 1_700, `${low} of 10000 below 0.15`);
  });
});
