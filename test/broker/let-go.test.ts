// A publish that goes to disk only (its queue's in-memory window is full)
// lets go of its body once the log has it, not once it lands. A body
// under 4 KiB is copied into the log's chunks, so the AMQP socket chunk
// it is usually a view of dies young. A larger one is written from its
// own buffer, held by the log until the write lands: copying it too cost
// more than the collections it spared once bin/usher gave V8 a 128 MB
// old space (issue #4, src/broker/broker.ts publishBatch).

import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { test } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import { heldDisk, openBroker, tempDir, text, until } from '../helpers.js';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const BODY_BYTES = 16 * 1024;
const SMALL_BODY_BYTES = 1024;

/** Publishes one body, a view of a chunk nothing else holds; the chunk is watched. */
function publishFromChunk(broker: Broker, fill: string, bytes = BODY_BYTES): {
  chunk: WeakRef<ArrayBufferLike>;
  landing: Promise<unknown>;
} {
  const socketChunk = Buffer.allocUnsafeSlow(4 * bytes).fill('-');
  const body = socketChunk.subarray(bytes, 2 * bytes).fill(fill);
  return {
    chunk: new WeakRef(socketChunk.buffer),
    landing: broker.publishEach('q', [{ body }]),
  };
}

for (const bytes of [SMALL_BODY_BYTES, BODY_BYTES]) {
  const copied = bytes < 4096;
  test(`a publish of ${bytes} B kept on disk only lets go of its body ` +
    `${copied ? 'before' : 'once'} it lands`, async () => {
    const dir = tempDir('usher-let-go-');
    const disk = heldDisk();
    const broker = await openBroker(dir.path, {
      sync: true, storeIo: disk.io, hotReadyLimit: 2, hotMemoryBytes: 0,
    });
    try {
      await broker.createQueue('q', {});
      for (const n of ['a', 'b']) await broker.publish('q', [{ body: text(n) }]);

      disk.hold();
      const { chunk, landing } = publishFromChunk(broker, 'c', bytes);
      await until('the write to wait for its sync', () => disk.syncsWaiting === 1);
      // WeakRefs made in this job keep their targets until it ends.
      await new Promise((resolve) => setImmediate(resolve));
      collectGarbage();
      assert.equal(chunk.deref() === undefined, copied,
        copied ? 'the chunk is let go while the write waits' : 'the log writes from the chunk');

      disk.release();
      assert.deepEqual((await landing as { duplicate: boolean }[]).map((a) => a.duplicate), [false]);
      await new Promise((resolve) => setImmediate(resolve));
      collectGarbage();
      assert.equal(chunk.deref(), undefined, 'the chunk is let go once the write lands');
      const received = await broker.receive('q', { max: 3, waitMs: 0 });
      assert.deepEqual(received.map((m) => m.body.length), [1, 1, bytes]);
      assert.ok(received[2].body.equals(Buffer.alloc(bytes, 'c')), 'read back as published');
      assert.equal(broker.getQueue('q').stats.bytes, 2 + bytes);
    } finally {
      disk.release();
      await broker.close();
      dir.remove();
    }
  });
}

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
