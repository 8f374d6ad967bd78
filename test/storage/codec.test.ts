import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MessageTooLargeError } from '../../src/errors.js';
import { FRAME_HEADER_BYTES, MAX_RECORD_BYTES, encodeRecord } from '../../src/storage/codec.js';
import { decodePayload, decodePublishedHead, payloadFits } from '../../src/storage/codec-decode.js';
import { Batch } from '../../src/storage/batch.js';
import { crc32c, crc32cReference } from '../../src/storage/crc32c.js';
import {
  FrameDecoder,
  type FrameResult,
} from '../../src/storage/frame-decoder.js';
import type { LogRecord } from '../../src/storage/records.js';
import { randomId } from '../../src/util/random-id.js';
import { ticket } from './helpers.js';

/** `record` encoded and decoded again. */
function roundTrip(record: LogRecord): LogRecord {
  const decoded = decodePayload(encodeRecord(record).subarray(FRAME_HEADER_BYTES), true);
  assert.ok(decoded.ok, decoded.ok ? '' : decoded.reason);
  return decoded.record;
}

// 'binary' strings cover the whole Unicode range but never a lone
// surrogate, which UTF-8 cannot carry (see codec.ts).
const text = fc.string({ unit: 'binary', maxLength: 24 });
const number = fc.double();
const headers = fc.dictionary(text, text, {
  maxKeys: 6,
  noNullPrototype: true,
});
const body = fc
  .uint8Array({ maxLength: 600 })
  .map((bytes) => Buffer.from(bytes));

const settings = fc.dictionary(
  text,
  fc.oneof(fc.integer(), text, fc.boolean(), fc.constant(null)),
  { maxKeys: 5, noNullPrototype: true },
);

// Records as the broker builds them: plain objects, never null-prototype.
function plain<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }) {
  return fc.record(model, { noNullPrototype: true });
}

const record: fc.Arbitrary<LogRecord> = fc.oneof(
  plain({
    type: fc.constant('queue-declared' as const),
    name: text,
    settings,
  }),
  plain({ type: fc.constant('queue-deleted' as const), name: text }),
  plain({
    type: fc.constant('published' as const),
    seq: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    queue: text,
    // Generated ids (type 7 keeps them in 16 bytes) and any other text.
    id: fc.oneof(text, fc.uuid().map((id) => id.toLowerCase())),
    // Type 7 for a priority of 0-255 and a whole failure count, type 3
    // for the rest.
    priority: fc.oneof(number, fc.integer({ min: 0, max: 255 })),
    group: fc.option(text, { nil: null }),
    headers,
    body,
    publishedAt: fc.oneof(number, fc.constantFrom(0, -0, 1_764_900_000_000)),
    availableAt: fc.oneof(number, fc.constantFrom(0, -0, 1_764_900_000_000)),
    expiresAt: fc.option(number, { nil: null }),
    failures: fc.oneof(number, fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)),
  }),
  plain({
    type: fc.constant('settled' as const),
    seqs: fc.array(fc.integer({ min: 0 }), { maxLength: 50 }),
  }),
  plain({
    type: fc.constant('retried' as const),
    seq: fc.integer({ min: 0 }),
    failures: number,
    availableAt: number,
  }),
  plain({
    type: fc.constant('moved' as const),
    seq: fc.integer({ min: 0 }),
    queue: text,
    headers,
    failures: number,
    availableAt: number,
    expiresAt: fc.option(number, { nil: null }),
  }),
);

function decodeAll(decoder: FrameDecoder, out: LogRecord[]): FrameResult {
  for (;;) {
    const result = decoder.next();
    if (result.kind !== 'record') return result;
    out.push(result.record);
  }
}

function decodeFrame(frame: Buffer): FrameResult {
  const decoder = new FrameDecoder({ copyBodies: false });
  decoder.push(frame);
  return decoder.next();
}

test('every record kind round-trips through a frame', () => {
  fc.assert(
    fc.property(record, fc.boolean(), (original, copyBodies) => {
      const frame = encodeRecord(original);
      assert.equal(frame.readUInt32LE(0), frame.length - FRAME_HEADER_BYTES);

      const decoder = new FrameDecoder({ copyBodies });
      decoder.push(frame);
      const result = decoder.next();
      assert.equal(result.kind, 'record');
      assert.deepEqual(result.kind === 'record' && result.record, original);
      assert.equal(decoder.consumed, frame.length);
      assert.equal(decoder.next().kind, 'need-more');
    }),
    { numRuns: 1000 },
  );
});

test('a stream of frames decodes when split at any point', () => {
  fc.assert(
    fc.property(
      fc.array(record, { minLength: 1, maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 6 }),
      (records, cuts) => {
        const stream = Buffer.concat(records.map(encodeRecord));
        const points = [...new Set(cuts.map((c) => c % stream.length))].sort(
          (a, b) => a - b,
        );
        const decoder = new FrameDecoder({ copyBodies: false });
        const out: LogRecord[] = [];
        let from = 0;
        for (const point of [...points, stream.length]) {
          decoder.push(stream.subarray(from, point));
          from = point;
          assert.equal(decodeAll(decoder, out).kind, 'need-more');
        }
        assert.deepEqual(out, records);
      },
    ),
    { numRuns: 300 },
  );
});

test('a ticket stream decodes byte by byte and split at every offset', () => {
  const records: LogRecord[] = [
    ticket(1),
    { type: 'settled', seqs: [1] },
    ticket(2),
  ];
  const stream = Buffer.concat(records.map(encodeRecord));

  const byteByByte: LogRecord[] = [];
  const decoder = new FrameDecoder({ copyBodies: true });
  for (let i = 0; i < stream.length; i++) {
    decoder.push(stream.subarray(i, i + 1));
    assert.equal(decodeAll(decoder, byteByByte).kind, 'need-more');
  }
  assert.deepEqual(byteByByte, records);
  assert.equal(decoder.buffered, 0);

  for (let split = 0; split <= stream.length; split++) {
    const out: LogRecord[] = [];
    const halves = new FrameDecoder({ copyBodies: false });
    halves.push(stream.subarray(0, split));
    decodeAll(halves, out);
    halves.push(stream.subarray(split));
    assert.equal(decodeAll(halves, out).kind, 'need-more');
    assert.deepEqual(out, records, `split at ${split}`);
  }
});

test('bodies are views of the input only when asked', () => {
  const frame = encodeRecord(ticket(7));
  const view = decodeFrame(frame);
  assert.ok(view.kind === 'record' && view.record.type === 'published');
  assert.equal(view.record.body.buffer, frame.buffer);

  const decoder = new FrameDecoder({ copyBodies: true });
  decoder.push(frame);
  const copy = decoder.next();
  assert.ok(copy.kind === 'record' && copy.record.type === 'published');
  // Small copies may share Buffer's pool with the frame: what counts is
  // that the frame's bytes can change under the view and not the copy.
  frame.fill(0);
  assert.deepEqual(copy.record.body, ticket(7).body);
  assert.ok(view.record.body.every((byte) => byte === 0));
});

test('a ticket event encodes to about 400 bytes', () => {
  const bytes = encodeRecord(ticket(123456)).length;
  assert.ok(bytes > 380 && bytes < 420, `${bytes} bytes`);
});

test('a published record with a generated id costs 55 bytes beside its body (type 7)', () => {
  const published: LogRecord = {
    type: 'published', seq: 2 ** 40 + 3, queue: 'backlog', id: randomId(), priority: 0,
    group: null, headers: {}, body: Buffer.alloc(460, 0x61), publishedAt: 1_764_900_000_000,
    availableAt: 1_764_900_000_000, expiresAt: null, failures: 0,
  };
  const frame = encodeRecord(published);
  assert.equal(frame.length, 460 + 55);
  assert.equal(frame[FRAME_HEADER_BYTES], 7);
  assert.deepEqual(roundTrip(published), published);
});

test('a priority or failure count type 7 cannot hold goes out as type 3, intact', () => {
  const base = { ...ticket(5), id: randomId() };
  for (const odd of [{ priority: 1.5 }, { priority: 256 }, { priority: -0 }, { failures: -1 },
    { failures: 0.25 }, { failures: 2 ** 60 }]) {
    const record: LogRecord = { ...base, ...odd };
    assert.equal(encodeRecord(record)[FRAME_HEADER_BYTES], 3, JSON.stringify(odd));
    assert.deepEqual(roundTrip(record), record);
  }
  // And the compact fields each way: delayed, expiring, an id that is
  // almost a UUID (upper case), headers past a one-byte count.
  const headers = Object.fromEntries(Array.from({ length: 130 }, (_, i) => [`h${i}`, 'v']));
  for (const odd of [{ availableAt: base.publishedAt + 5 }, { expiresAt: 9 }, { group: null },
    { id: randomId().toUpperCase() }, { headers }, { failures: 300, priority: 255 }]) {
    const record: LogRecord = { ...base, ...odd };
    assert.equal(encodeRecord(record)[FRAME_HEADER_BYTES], 7, Object.keys(odd)[0]);
    assert.deepEqual(roundTrip(record), record);
  }
});

test('a __proto__ header stays an own header', () => {
  const original: LogRecord = {
    type: 'moved',
    seq: 3,
    queue: 'q',
    headers: JSON.parse('{"__proto__":"x","a":"b"}') as Record<string, string>,
    failures: 1,
    availableAt: 2,
    expiresAt: null,
  };
  const result = decodeFrame(encodeRecord(original));
  assert.ok(result.kind === 'record' && result.record.type === 'moved');
  assert.equal(Object.getPrototypeOf(result.record.headers), Object.prototype);
  assert.deepEqual(Object.keys(result.record.headers), ['__proto__', 'a']);
  assert.deepEqual(result.record, original);
});

test('records with the same headers and queue each get headers of their own', () => {
  // The decoder reuses what it decoded last from the same bytes
  // (LastDecoded): a change to one message's headers must not reach the
  // next, and different bytes must not find the last value.
  const base = { ...ticket(1), id: randomId() };
  const headers = { ...base.headers, 'x-source': 'helpdesq' };
  const other = { ...base, seq: 9, queue: 'ticketz', headers };
  // Something else first, so that base's bytes are new to the decoder.
  assert.deepEqual(roundTrip(other), other);
  const seen = new Set<Record<string, string>>();
  for (let seq = 1; seq <= 4; seq++) {
    const decoded = roundTrip({ ...base, seq });
    assert.ok(decoded.type === 'published');
    assert.deepEqual(decoded.headers, base.headers);
    assert.ok(!seen.has(decoded.headers));
    seen.add(decoded.headers);
    decoded.headers['x-source'] = 'changed';
    delete decoded.headers['content-type'];
  }

  assert.deepEqual(roundTrip(other), other);
  const proto = { ...base, seq: 4, headers: JSON.parse('{"__proto__":"x","a":"b"}') };
  for (let i = 0; i < 3; i++) {
    const again = roundTrip(proto);
    assert.ok(again.type === 'published');
    assert.equal(Object.getPrototypeOf(again.headers), Object.prototype);
    assert.deepEqual(Object.keys(again.headers), ['__proto__', 'a']);
  }
  assert.deepEqual(roundTrip(base), base);
});

test('encoding a record over the limit throws MessageTooLargeError', () => {
  const huge = { ...ticket(1), body: Buffer.allocUnsafe(MAX_RECORD_BYTES) };
  assert.throws(() => encodeRecord(huge), MessageTooLargeError);
});

// Builds a frame around `payload` with a correct checksum, so only the
// payload decoder can object.
function frameOf(payload: Buffer): Buffer {
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32LE(payload.length, 0);
  header.writeUInt32LE(crc32c(payload), 4);
  return Buffer.concat([header, payload]);
}

test('a length over the limit is corrupt before any payload arrives', () => {
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32LE(MAX_RECORD_BYTES + 1, 0);
  const result = decodeFrame(header);
  assert.equal(result.kind, 'corrupt');
  assert.match(result.kind === 'corrupt' ? result.reason : '', /exceeds/);
});

test('an empty payload, a bad checksum and an unknown type are corrupt', () => {
  assert.equal(decodeFrame(Buffer.alloc(FRAME_HEADER_BYTES)).kind, 'corrupt');

  const frame = encodeRecord(ticket(1));
  frame[frame.length - 1] ^= 0x01;
  const flipped = decodeFrame(frame);
  assert.deepEqual(flipped, {
    kind: 'corrupt',
    reason: 'frame checksum mismatch',
  });

  const unknown = decodeFrame(frameOf(Buffer.from([99])));
  assert.deepEqual(unknown, {
    kind: 'corrupt',
    reason: 'unknown record type 99',
  });
});

test('a corrupt decoder stays corrupt and consumes nothing more', () => {
  const good = encodeRecord({ type: 'queue-deleted', name: 'a' });
  const bad = frameOf(Buffer.from([42]));
  const decoder = new FrameDecoder({ copyBodies: false });
  decoder.push(Buffer.concat([good, bad, good]));
  assert.equal(decoder.next().kind, 'record');
  assert.equal(decoder.next().kind, 'corrupt');
  assert.equal(decoder.next().kind, 'corrupt');
  assert.equal(decoder.consumed, good.length);
});

test('payload lengths are checked against the bytes that remain', () => {
  const cases: Array<[string, Buffer, RegExp]> = [];

  // A string claiming 1000 bytes in a 9-byte payload.
  const longString = Buffer.alloc(9);
  longString.writeUInt8(2, 0);
  longString.writeUInt32LE(1000, 1);
  cases.push(['string', longString, /1000 elements needs 1000 bytes/]);

  // A settled record claiming 2^32-1 seqs: must not allocate them.
  const manySeqs = Buffer.alloc(5);
  manySeqs.writeUInt8(4, 0);
  manySeqs.writeUInt32LE(0xffffffff, 1);
  cases.push(['settled count', manySeqs, /4294967295 elements/]);

  // A null marker that is neither 0 nor 1.
  const moved = encodeRecord({
    type: 'moved',
    seq: 1,
    queue: '',
    headers: {},
    failures: 0,
    availableAt: 0,
    expiresAt: null,
  }).subarray(FRAME_HEADER_BYTES);
  const badMarker = Buffer.from(moved);
  badMarker[badMarker.length - 1] = 7;
  cases.push(['null marker', badMarker, /null marker 7/]);

  // Trailing bytes after a complete record.
  const trailing = Buffer.concat([moved, Buffer.from([0])]);
  cases.push(['trailing', trailing, /1 bytes left after a moved record/]);

  // Every truncation of a valid ticket payload.
  const payload = encodeRecord(ticket(9)).subarray(FRAME_HEADER_BYTES);
  for (let cut = 0; cut < payload.length; cut++) {
    cases.push([`cut ${cut}`, payload.subarray(0, cut), /./]);
  }

  for (const [name, bytes, reason] of cases) {
    const result = decodePayload(bytes, false);
    assert.equal(result.ok, false, name);
    assert.match(result.ok ? '' : result.reason, reason, name);
    if (bytes.length > 0) {
      assert.equal(decodeFrame(frameOf(bytes)).kind, 'corrupt', name);
    }
  }
});

test('queue settings that are not a JSON object are corrupt', () => {
  for (const json of ['[1]', 'null', '{"a":', '3']) {
    const name = Buffer.from('q');
    const settingsBytes = Buffer.from(json);
    const payload = Buffer.alloc(9 + name.length + settingsBytes.length);
    let off = payload.writeUInt8(1, 0);
    off = payload.writeUInt32LE(name.length, off);
    off += name.copy(payload, off);
    off = payload.writeUInt32LE(settingsBytes.length, off);
    settingsBytes.copy(payload, off);
    const result = decodePayload(payload, false);
    assert.equal(result.ok, false, json);
  }
});

test('payloadFits accepts every payload that decodes', () => {
  const byte = fc.integer({ min: 0, max: 255 });
  const damage = fc.array(fc.tuple(fc.nat(), byte), { maxLength: 3 });
  fc.assert(
    fc.property(record, damage, fc.nat(), (r, writes, cut) => {
      const payload = Buffer.from(encodeRecord(r).subarray(FRAME_HEADER_BYTES));
      const work = { steps: 0 };
      assert.ok(payloadFits(payload, work));
      assert.equal(
        work.steps,
        'headers' in r ? Object.keys(r.headers).length : 0,
      );

      for (const [at, value] of writes) payload[at % payload.length] = value;
      const damaged = payload.subarray(0, payload.length - (cut % 4));
      if (decodePayload(damaged, false).ok) {
        assert.ok(payloadFits(damaged, work));
      }
    }),
    { numRuns: 2000 },
  );
});

test('payloadFits refuses a payload whose fields do not end at its end', () => {
  const work = { steps: 0 };
  const payload = encodeRecord(ticket(1)).subarray(FRAME_HEADER_BYTES);
  const short = payload.subarray(0, payload.length - 1);
  const long = Buffer.concat([payload, Buffer.alloc(1)]);
  assert.equal(payloadFits(short, work), false);
  assert.equal(payloadFits(long, work), false);
  assert.equal(payloadFits(Buffer.from([7]), work), false);
  assert.equal(payloadFits(Buffer.alloc(0), work), false);
  // A settled record of 2 seqs is 1 + 4 + 16 bytes, no more, no less.
  const settled = Buffer.alloc(21);
  settled.writeUInt8(4, 0);
  settled.writeUInt32LE(2, 1);
  assert.equal(payloadFits(settled, work), true);
  settled.writeUInt32LE(3, 1);
  assert.equal(payloadFits(settled, work), false);
});

test('a published head decodes as the whole record does, and damage as decodePayload sees it', () => {
  const byte = fc.integer({ min: 0, max: 255 });
  const damage = fc.array(fc.tuple(fc.nat(), byte), { maxLength: 3 });
  fc.assert(
    fc.property(record, damage, fc.nat(), (r, writes, cut) => {
      const payload = Buffer.from(encodeRecord(r).subarray(FRAME_HEADER_BYTES));
      const head = decodePublishedHead(payload);
      if (r.type !== 'published') {
        assert.equal(typeof head, 'string');
        return;
      }
      assert.deepEqual(head, {
        seq: r.seq,
        priority: r.priority,
        group: r.group,
        availableAt: r.availableAt,
        failures: r.failures,
        bodyBytes: r.body.length,
      });

      // Damage: a head decodes exactly when the whole payload does.
      for (const [at, value] of writes) payload[at % payload.length] = value;
      const damaged = payload.subarray(0, payload.length - (cut % 4));
      const whole = decodePayload(damaged, false);
      const damagedHead = decodePublishedHead(damaged);
      const published = whole.ok && whole.record.type === 'published';
      assert.equal(typeof damagedHead !== 'string', published);
    }),
    { numRuns: 2000 },
  );
});

test('strings round-trip on both sides of the short-ASCII fast path', () => {
  // Strings of up to 64 ASCII chars are copied in JS, others by Buffer:
  // lengths around that bound, with a non-ASCII char first, last or nowhere.
  for (const length of [0, 1, 2, 63, 64, 65, 200]) {
    for (const odd of ['', 'é', '€', '😀']) {
      for (const place of ['start', 'end']) {
        const ascii = 'q'.repeat(Math.max(0, length - odd.length));
        const value = place === 'start' ? odd + ascii : ascii + odd;
        const original: LogRecord = {
          type: 'published',
          seq: length,
          queue: value,
          id: value,
          priority: 0,
          group: value,
          headers: { [value]: value, plain: value },
          publishedAt: 1,
          availableAt: 2,
          expiresAt: null,
          failures: 0,
          body: Buffer.from(value),
        };
        const result = decodeFrame(encodeRecord(original));
        assert.equal(result.kind, 'record', `${length} ${JSON.stringify(odd)} ${place}`);
        assert.deepEqual(result.kind === 'record' && result.record, original);
      }
    }
  }
});

test('frames of many sizes, in and past the scratch views, keep their bytes and checksum', () => {
  // writeFrame reuses a view a payload size for 256 sizes up to 4 KiB,
  // then empties its map: every size here, twice and interleaved, must
  // still come out as its own frame in its own place in the batch.
  const sizes = Array.from({ length: 600 }, (_, i) => (i * 13) % 6000);
  const records = [...sizes, ...sizes.reverse()].map((size, i) => ({
    ...ticket(i + 1, 'q'),
    body: Buffer.alloc(size, i % 251),
  }));
  const batch = new Batch();
  batch.add(records);
  const stream = Buffer.concat(batch.buffers());
  let at = 0;
  for (const record of records) {
    const length = stream.readUInt32LE(at);
    const payload = stream.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + length);
    assert.equal(stream.readUInt32LE(at + 4), crc32cReference(payload));
    const decoded = decodePayload(payload, true);
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.record, record);
    at += FRAME_HEADER_BYTES + length;
  }
  assert.equal(at, stream.length);
});

test('headers equal to the last measured come out as their own, whatever came between', () => {
  // The encoder keeps the last headers it measured as bytes, and a batch
  // measures all its records before it writes any: near misses (same
  // keys, another value; same entries, another order; one more or one
  // fewer) must never take the kept bytes of another record.
  const pool: Record<string, string>[] = [
    { 'delivery-mode': '2', 'x-usher-amqp-exchange': '', 'x-usher-amqp-routing-key': 'tickets' },
    { 'delivery-mode': '2', 'x-usher-amqp-exchange': '', 'x-usher-amqp-routing-key': 'ticket' },
    { 'x-usher-amqp-exchange': '', 'delivery-mode': '2', 'x-usher-amqp-routing-key': 'tickets' },
    { 'delivery-mode': '2', 'x-usher-amqp-exchange': '' },
    { 'delivery-mode': '2', 'x-usher-amqp-exchange': '', 'x-usher-amqp-routing-key': 'tickets', a: '' },
    { 'delivery-mode': '1', 'x-usher-amqp-exchange': 'é', 'x-usher-amqp-routing-key': 'tickets' },
    { long: 'x'.repeat(300) },
    {},
  ];
  const pick = fc.nat(pool.length - 1);
  fc.assert(
    fc.property(fc.array(fc.array(pick, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 6 }), (calls) => {
      const batch = new Batch();
      const records: LogRecord[] = [];
      for (const picks of calls) {
        const added = picks.map((p) => ({ ...ticket(records.length + 1, 'q'), headers: { ...pool[p] } }));
        batch.add(added);
        records.push(...added);
      }
      const stream = Buffer.concat(batch.buffers());
      let at = 0;
      for (const record of records) {
        const length = stream.readUInt32LE(at);
        const payload = stream.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + length);
        const decoded = decodePayload(payload, true);
        assert.ok(decoded.ok, decoded.ok ? '' : decoded.reason);
        assert.deepEqual(decoded.record, record);
        const headers = (decoded.record as typeof record & { headers: object }).headers;
        assert.deepEqual(Object.keys(headers), Object.keys((record as typeof record & { headers: object }).headers));
        at += FRAME_HEADER_BYTES + length;
      }
      assert.equal(at, stream.length);
    }),
  );
});
