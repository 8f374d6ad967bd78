// A publish that goes to disk only (its queue's in-memory window is full)
// lets go of its body as soon as the log has copied it, not once it lands:
// a body held for the whole write, usually a view of an AMQP socket
// chunk, lived through young-generation collections and died old, and
// 16 KiB bodies then brought a full collection every few thousand
// publishes (issue #4, src/broker/broker.ts publishBatch).

import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { test } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import { heldDisk, openBroker, tempDir, text, until } from '../helpers.js';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const BODY_BYTES = 16 * 1024;

/** Publishes one 16 KiB body, a view of a chunk nothing else holds; the chunk is watched. */
function publishFromChunk(broker: Broker, fill: string): {
  chunk: WeakRef<ArrayBufferLike>;
  landing: Promise<unknown>;
} {
  const socketChunk = Buffer.allocUnsafeSlow(4 * BODY_BYTES).fill('-');
  const body = socketChunk.subarray(BODY_BYTES, 2 * BODY_BYTES).fill(fill);
  return {
    chunk: new WeakRef(socketChunk.buffer),
    landing: broker.publishEach('q', [{ body }]),
  };
}

test('a publish kept on disk only lets go of its body before it lands', async () => {
  const dir = tempDir('usher-let-go-');
  const disk = heldDisk();
  const broker = await openBroker(dir.path, {
    sync: true, storeIo: disk.io, hotReadyLimit: 2, hotMemoryBytes: 0,
  });
  try {
    await broker.createQueue('q', {});
    for (const n of ['a', 'b']) await broker.publish('q', [{ body: text(n) }]);

    disk.hold();
    const { chunk, landing } = publishFromChunk(broker, 'c');
    await until('the write to wait for its sync', () => disk.syncsWaiting === 1);
    // WeakRefs made in this job keep their targets until it ends.
    await new Promise((resolve) => setImmediate(resolve));
    collectGarbage();
    assert.equal(chunk.deref(), undefined, 'the chunk is held while the write waits');

    disk.release();
    assert.deepEqual((await landing as { duplicate: boolean }[]).map((a) => a.duplicate), [false]);
    const received = await broker.receive('q', { max: 3, waitMs: 0 });
    assert.deepEqual(received.map((m) => m.body.length), [1, 1, BODY_BYTES]);
    assert.ok(received[2].body.equals(Buffer.alloc(BODY_BYTES, 'c')), 'read back as published');
    assert.equal(broker.getQueue('q').stats.bytes, 2 + BODY_BYTES);
  } finally {
    disk.release();
    await broker.close();
    dir.remove();
  }
});

test('a publish the window has room for keeps its body in memory', async () => {
  const dir = tempDir('usher-let-go-');
  const broker = await openBroker(dir.path, { hotReadyLimit: 2 });
  try {
    await broker.createQueue('q', {});
    const { landing } = publishFromChunk(broker, 'h');
    await landing;
    const [message] = await broker.receive('q', { max: 1, waitMs: 0 });
    assert.ok(message.body.equals(Buffer.alloc(BODY_BYTES, 'h')));
  } finally {
    await broker.close();
    dir.remove();
  }
});
