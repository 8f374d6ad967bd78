// CASES.md C18 against a real `usher serve` at its default 16 MiB limit.
// Sizes: 16 MiB is accepted over HTTP and AMQP; 16 MiB + 1 is refused;
// small publishes from another client are confirmed meanwhile. Over HTTP
// the JSON envelope (base64 bodies included) is read whole up to its own
// limit before the message inside is measured; requests over that limit
// are refused while they stream (test/http/limits.test.ts). Backlog:
// a backlog of 1 KiB messages survives a SIGKILL whole and in order. CI
// uses 20,000 messages; USHER_C18_BACKLOG=2000000 (the soak) runs the full
// case, and bench/storage.ts measures memory and restart time.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import amqp from 'amqplib';

import { tempDir } from '../helpers.js';
import { ServeProcess } from './serve-process.js';

const MiB = 1024 * 1024;
const LIMIT = 16 * MiB;
const BACKLOG = Number(process.env.USHER_C18_BACKLOG ?? 20_000);

let dir: ReturnType<typeof tempDir>;
let usher: ServeProcess;

before(async () => {
  dir = tempDir('usher-c18-');
  usher = new ServeProcess(dir.path);
  await usher.start();
  await usher.request('PUT', '/queues/big', {});
  await usher.request('PUT', '/queues/small', {});
});

after(async () => {
  await usher.kill();
  dir.remove();
});

/** Publishes small messages one by one until `done()`; returns how many. */
async function smallPublisher(done: () => boolean): Promise<number> {
  let confirmed = 0;
  while (!done() && confirmed < 10_000) {
    const { status } = await usher.request('POST', '/queues/small/messages', { body: 'tick' });
    assert.equal(status, 201);
    confirmed++;
  }
  return confirmed;
}

describe('16 MiB limit (C18)', () => {
  it('takes 16 MiB over HTTP, refuses one byte more, others keep going', async () => {
    let bigDone = false;
    const others = smallPublisher(() => bigDone);

    const exact = await usher.request('POST', '/queues/big/messages', { id: 'exact', body: 'x'.repeat(LIMIT) });
    const over = await usher.request('POST', '/queues/big/messages', { id: 'over', body: 'x'.repeat(LIMIT + 1) });
    bigDone = true;

    assert.equal(exact.status, 201);
    assert.equal(over.status, 413);
    assert.equal(over.json.error.code, 'MESSAGE_TOO_LARGE');
    assert.ok((await others) > 0, 'small publishes stalled behind the big ones');
    const { json } = await usher.request('GET', '/queues/big');
    assert.equal(json.stats.total, 1);
    assert.equal(json.stats.bytes, LIMIT);
  });

  // That the refusal comes from the content header, before any body frame
  // is buffered, is shown frame by frame in test/amqp/frame-bounds.test.ts.
  it('over AMQP stores 16 MiB and closes the channel of 16 MiB + 1 with 406', async () => {
    const connection = await amqp.connect(usher.amqpUrl);
    try {
      const channel = await connection.createConfirmChannel();
      await new Promise<void>((resolve, reject) =>
        channel.sendToQueue('big', Buffer.alloc(LIMIT, 1), {}, (err) => (err ? reject(err) : resolve())),
      );

      // A second channel publishes 16 MiB + 1; the broker closes it with
      // 406 on reading the size in the content header.
      const refused = await connection.createConfirmChannel();
      const closed = new Promise<Error>((resolve) => refused.once('error', resolve));
      refused.sendToQueue('big', Buffer.alloc(LIMIT + 1, 2));
      const err = await closed;
      assert.match(err.message, /406/);

      const { json } = await usher.request('GET', '/queues/big');
      assert.equal(json.stats.total, 2, 'only the 16 MiB message was stored');
      assert.equal(json.stats.bytes, 2 * LIMIT);
      await channel.close();
    } finally {
      await connection.close().catch(() => undefined);
    }
  });
});

describe(`a backlog of ${BACKLOG} 1 KiB messages (C18)`, () => {
  it('survives a SIGKILL whole and in order', async () => {
    await usher.request('PUT', '/queues/backlog', {});
    const body = 'b'.repeat(1000);
    for (let start = 0; start < BACKLOG; start += 1000) {
      const messages = Array.from({ length: Math.min(1000, BACKLOG - start) }, (_, i) => ({
        id: `b-${start + i}`,
        body,
      }));
      const { status } = await usher.request('POST', '/queues/backlog/messages/batch', { messages });
      assert.equal(status, 201);
    }
    await usher.kill();
    await usher.start();

    const { json } = await usher.request('GET', '/queues/backlog');
    assert.equal(json.stats.total, BACKLOG);
    // The first and last thousand come back in publish order.
    const first = await usher.request('GET', '/queues/backlog/messages?limit=1000&offset=0');
    assert.deepEqual(
      first.json.messages.map((m: { id: string }) => m.id),
      Array.from({ length: Math.min(1000, BACKLOG) }, (_, i) => `b-${i}`),
    );
    const tail = Math.max(0, BACKLOG - 1000);
    const last = await usher.request('GET', `/queues/backlog/messages?limit=1000&offset=${tail}`);
    assert.equal(last.json.messages.at(-1).id, `b-${BACKLOG - 1}`);
  });
});
