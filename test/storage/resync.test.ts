import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { encodeRecord } from '../../src/storage/codec.js';
import { Resync } from '../../src/storage/resync.js';
import { ticket } from './helpers.js';

const frames = Buffer.concat([ticket(1), ticket(2)].map(encodeRecord));

test('the search finds the first whole frame after zeros or junk', () => {
  for (const junk of [Buffer.alloc(70_000), randomBytes(300_000)]) {
    const buf = Buffer.concat([junk, frames]);
    assert.deepEqual(new Resync(buf).next(0), {
      kind: 'found',
      offset: junk.length,
    });
    // From inside the first frame on, the second one is next.
    const second = junk.length + encodeRecord(ticket(1)).length;
    assert.deepEqual(new Resync(buf).next(junk.length + 1), {
      kind: 'found',
      offset: second,
    });
  }
});

test('the search reports none when no whole frame follows', () => {
  const torn = frames.subarray(0, frames.length - 1);
  const buf = Buffer.concat([randomBytes(10_000), torn.subarray(100)]);
  assert.deepEqual(new Resync(buf).next(0), { kind: 'none' });
  assert.deepEqual(new Resync(Buffer.alloc(5)).next(0), { kind: 'none' });
});

// Settled records that claim to run to the end of the buffer, packed 13
// bytes apart: every one fits, and every one would be hashed in full.
function fakeFrames(bytes: number, count: number): Buffer {
  const buf = Buffer.alloc(bytes);
  for (let i = 0, at = 0; i < count; i++, at += 13) {
    const seqs = Math.floor((bytes - at - 8 - 5) / 8);
    buf.writeUInt32LE(5 + 8 * seqs, at);
    buf.writeUInt32LE(0, at + 4);
    buf.writeUInt8(4, at + 8);
    buf.writeUInt32LE(seqs, at + 9);
  }
  return buf;
}

test('the search gives up on input built to make it quadratic', () => {
  const buf = fakeFrames(8 * 1024 * 1024, 50_000);
  const started = performance.now();
  assert.deepEqual(new Resync(buf).next(0), { kind: 'gave-up' });
  // Without the budget: about 50 000 hashes of ~8 MiB, minutes of work.
  assert.ok(performance.now() - started < 2_000);
});

test('a few fakes within the budget do not hide the frame after them', () => {
  const fakes = fakeFrames(200_000, 20);
  const buf = Buffer.concat([fakes, frames]);
  assert.deepEqual(new Resync(buf).next(0), {
    kind: 'found',
    offset: fakes.length,
  });
});
