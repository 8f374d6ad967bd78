// The log store's batches (src/storage/batch.ts): the 64 KiB chunks of a
// batch that landed are reused by later batches, and only those; large
// bodies go to the write as they are, the bytes unchanged.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { randomBytes } from 'node:crypto';

import { Batch } from '../../src/storage/batch.js';
import { FRAME_HEADER_BYTES } from '../../src/storage/codec.js';
import { decodePayload } from '../../src/storage/codec-decode.js';
import { crc32c } from '../../src/storage/crc32c.js';
import type { PublishedRecord } from '../../src/storage/records.js';
import { ticket } from './helpers.js';

/** Enough tickets to fill more than one 64 KiB chunk. */
function tickets(from: number): PublishedRecord[] {
  return Array.from({ length: 300 }, (_, i) => ticket(from + i));
}

function chunksOf(batch: Batch): Set<ArrayBufferLike> {
  return new Set(batch.buffers().map((piece) => piece.buffer));
}

function decoded(batch: Batch): unknown[] {
  const stream = Buffer.concat(batch.buffers());
  const records: unknown[] = [];
  for (let at = 0; at < stream.length;) {
    const end = at + FRAME_HEADER_BYTES + stream.readUInt32LE(at);
    const result = decodePayload(stream.subarray(at + FRAME_HEADER_BYTES, end), true);
    assert.ok(result.ok);
    records.push(result.record);
    at = end;
  }
  return records;
}

test('a landed batch gives its chunks to the next; a failed one does not', () => {
  const failed = new Batch();
  failed.add(tickets(1));
  const failedChunks = chunksOf(failed);
  failed.promise.catch(() => {});
  failed.reject(new Error('the write failed'));

  const landed = new Batch();
  landed.add(tickets(301));
  const landedChunks = chunksOf(landed);
  assert.equal([...landedChunks].some((chunk) => failedChunks.has(chunk)), false);
  landed.resolve();

  const next = new Batch();
  const records = tickets(601);
  next.add(records);
  const nextChunks = chunksOf(next);
  assert.ok([...nextChunks].some((chunk) => landedChunks.has(chunk)), 'a landed chunk reused');
  assert.equal([...nextChunks].some((chunk) => failedChunks.has(chunk)), false);
  assert.deepEqual(decoded(next), records);
  assert.deepEqual(decoded(failed), tickets(1), 'a failed batch keeps its bytes for a rewrite');
});

test('a large body is a piece of the write itself, not a copy; every frame checks', () => {
  const records: PublishedRecord[] = [
    ticket(1),
    { ...ticket(2), body: Buffer.alloc(16 * 1024, 'sixteen KiB ') },
    ticket(3),
    { ...ticket(4), body: randomBytes(5000), priority: 300 },
    { ...ticket(5), body: Buffer.alloc(4095, 'just under ') },
    { ...ticket(6), body: Buffer.alloc(4096, 'at the mark ') },
  ];
  const batch = new Batch();
  batch.add(records);
  const pieces = batch.buffers();
  for (const seq of [2, 4, 6]) {
    assert.ok(pieces.includes(records[seq - 1].body), `body of ${seq} is a piece`);
  }
  assert.ok(!pieces.includes(records[4].body), 'a smaller one is copied');
  assert.equal(pieces.reduce((n, piece) => n + piece.length, 0), batch.bytes);

  const stream = Buffer.concat(pieces);
  for (let at = 0; at < stream.length;) {
    const end = at + FRAME_HEADER_BYTES + stream.readUInt32LE(at);
    const payload = stream.subarray(at + FRAME_HEADER_BYTES, end);
    assert.equal(crc32c(payload), stream.readUInt32LE(at + 4));
    at = end;
  }
  assert.deepEqual(decoded(batch), records);
});

test('the records may let go of their bodies once added: the batch holds what it writes', () => {
  const records: PublishedRecord[] = [
    { ...ticket(1), body: Buffer.alloc(16 * 1024, 'sixteen KiB ') },
    { ...ticket(2), body: Buffer.from('a ticket of a few bytes') },
  ];
  const expected = structuredClone(records);
  const batch = new Batch();
  batch.add(records);

  // What broker.ts's letGoOfBodies does to a publish that goes to disk only.
  for (const record of records) record.body = Buffer.alloc(record.body.length);
  assert.deepEqual(decoded(batch), expected.map((r) => ({ ...r, body: Buffer.from(r.body) })));
});
