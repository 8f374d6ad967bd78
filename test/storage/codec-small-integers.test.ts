// Whole numbers read back from the log come back as V8 holds small
// integers. A file of its own: V8 gives a record field one representation
// for every record made alike, and the other codec tests read back
// fractions that rightly make those fields doubles in their process.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import v8 from 'node:v8';

import { FRAME_HEADER_BYTES, encodeRecord } from '../../src/storage/codec.js';
import { decodePayload } from '../../src/storage/codec-decode.js';
import type { LogRecord } from '../../src/storage/records.js';
import { ticket } from './helpers.js';

function roundTrip(record: LogRecord): LogRecord {
  const decoded = decodePayload(encodeRecord(record).subarray(FRAME_HEADER_BYTES), true);
  assert.ok(decoded.ok, decoded.ok ? '' : decoded.reason);
  return decoded.record;
}

// V8's view of a number: %IsSmi needs the natives syntax, allowed from
// here on for functions made after (each test file runs in a process of
// its own).
v8.setFlagsFromString('--allow-natives-syntax');
const isSmallInteger = new Function('value', 'return %IsSmi(value)') as (n: number) => boolean;

test('whole numbers read back are small integers, as the broker makes them', () => {
  // Read unoptimized, an f64 of 5126 came back boxed. Records the broker
  // makes hold seq as a small integer, so one read back like that made
  // their shared seq field a double field, and every record the broker
  // made after had to be migrated (codec.ts, smallInteger).
  const compact = roundTrip({ ...ticket(5126), failures: 2 });
  const full = roundTrip({ ...ticket(5127), priority: 300, failures: 4 });
  const settled = roundTrip({ type: 'settled', seqs: [5128, 5129] });
  const retried = roundTrip({ type: 'retried', seq: 5130, failures: 1, availableAt: 1.5 });
  const moved = roundTrip({
    type: 'moved', seq: 5131, queue: 'q', headers: {}, failures: 6, availableAt: 2, expiresAt: null,
  });
  assert.ok(compact.type === 'published' && full.type === 'published');
  assert.ok(settled.type === 'settled' && retried.type === 'retried' && moved.type === 'moved');

  // Named and checked one by one: an array holding a double would hand
  // back every element boxed.
  const wholes: Record<string, number> = {
    'compact seq': compact.seq, 'compact priority': compact.priority,
    'compact failures': compact.failures, 'full seq': full.seq,
    'full priority': full.priority, 'full failures': full.failures,
    'settled seq': settled.seqs[0], 'retried seq': retried.seq,
    'retried failures': retried.failures, 'moved seq': moved.seq,
    'moved failures': moved.failures,
  };
  const boxed: string[] = [];
  for (const name of Object.keys(wholes)) if (!isSmallInteger(wholes[name])) boxed.push(name);
  assert.deepEqual(boxed, []);
  assert.deepEqual(Object.values(wholes), [5126, 5, 2, 5127, 300, 4, 5128, 5130, 1, 5131, 6]);
  // Anything else comes back as it was.
  const negativeZero = roundTrip({ ...ticket(1), priority: -0 });
  assert.ok(negativeZero.type === 'published' && Object.is(negativeZero.priority, -0));
  const fraction = roundTrip({ ...ticket(1), priority: 2.5 });
  assert.ok(fraction.type === 'published' && fraction.priority === 2.5);
});

