// The log store's batches (src/storage/batch.ts): the 64 KiB chunks of a
// batch that landed are reused by later batches, and only those.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Batch } from '../../src/storage/batch.js';
import { FRAME_HEADER_BYTES } from '../../src/storage/codec.js';
import { decodePayload } from '../../src/storage/codec-decode.js';
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
