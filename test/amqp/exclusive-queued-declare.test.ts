// Exclusive queues and their gone connections, beyond
// exclusive-delete-retry.test.ts: a declare that waited for another
// declare of its name (oneDeclareAtATime) as its connection went; one
// that failed after its connection went; a delete over HTTP while the
// reaper retries; many refused at once, then a restart.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import amqp from 'amqplib';

import { createAmqpServer } from '../../src/amqp/server.js';
import { nodeIo, type StoreIo } from '../../src/storage/io.js';
import {
  failNextToFinish, heldDisk, openBroker, refusingDisk, silentLogger, tempDir, until,
} from '../helpers.js';
import { channelAnswer, openAmqpFixture } from './amqp-fixture.js';
import { Raw } from './raw-client.js';

it('makes no exclusive queue for a connection gone while its declare waited behind one that failed', {
  timeout: 20_000,
}, async () => {
  const disk = heldDisk();
  const failing = failNextToFinish(disk.io);
  const usher = await openAmqpFixture('usher-exclusive-queued-', {
    storeIo: failing.io, sync: true,
  });
  try {
    // A shared declare of the name, held on its way to the log.
    const first = await usher.connect();
    disk.hold();
    const firstAnswer = channelAnswer(first, (ch) => ch.assertQueue('queued-exclusive'));
    await until('the first declare held', () => disk.syncsWaiting >= 1);

    // An exclusive declare of it waits behind that one; its connection goes.
    const gone = new Raw(usher.port);
    await gone.open('none');
    gone.method(1, {
      name: 'queue.declare', queue: 'queued-exclusive', passive: false, durable: true,
      exclusive: true, autoDelete: false, noWait: false, arguments: new Map(),
    });
    await sleep(100);
    gone.socket.destroy();
    await sleep(200);

    // The first declare fails: the waiting one makes the queue, for no one.
    failing.arm();
    disk.release();
    assert.notEqual(await firstAnswer, 'ok', 'the first declare failed');

    // Behind the waiting declare too (oneDeclareAtATime).
    const other = await usher.connect();
    assert.equal(await channelAnswer(other, (ch) => ch.assertQueue('queued-exclusive')), 'ok',
      'the name is free, not locked by a connection that has gone');
  } finally {
    disk.release();
    await usher.close();
  }
});

it('frees the name of an exclusive declare that failed after its connection went', {
  timeout: 20_000,
}, async () => {
  const disk = heldDisk();
  const failing = failNextToFinish(disk.io);
  const usher = await openAmqpFixture('usher-exclusive-failed-', {
    storeIo: failing.io, sync: true,
  });
  try {
    const gone = new Raw(usher.port);
    await gone.open('none');
    disk.hold();
    gone.method(1, {
      name: 'queue.declare', queue: 'failed-exclusive', passive: false, durable: true,
      exclusive: true, autoDelete: false, noWait: false, arguments: new Map(),
    });
    await until('the declare held', () => disk.syncsWaiting >= 1);
    gone.socket.destroy();
    await sleep(200);
    failing.arm();
    disk.release();

    const other = await usher.connect();
    assert.equal(await channelAnswer(other, (ch) => ch.assertQueue('failed-exclusive')), 'ok',
      'not locked by the gone connection');
  } finally {
    disk.release();
    await usher.close();
  }
});

it('a queue deleted over HTTP while its reaper waits to retry stays free for a new owner', {
  timeout: 20_000,
}, async () => {
  const disk = refusingDisk();
  const usher = await openAmqpFixture('usher-exclusive-http-delete-', { storeIo: disk.io });
  try {
    const owner = await usher.connect();
    await (await owner.createChannel()).assertQueue('reaped-http', { exclusive: true });
    disk.refusing = true;
    await owner.close();
    // Refused three times: the next retry is 0.5 s after the third has
    // failed. Its write is refused before it has failed (the store cuts
    // the file back first), and a delete asked meanwhile gets that
    // attempt's answer (EIO, as it failed once in CI): 200 ms lets it fail
    // and the reaper wait.
    await until('three deletes refused', () => disk.refused >= 3);
    await sleep(200);
    disk.refusing = false;
    await usher.broker.deleteQueue('reaped-http');

    const next = await usher.connect();
    const channel = await next.createChannel();
    await channel.assertQueue('reaped-http', { exclusive: true });
    // Past every retry the old reaping had planned.
    await sleep(1500);
    assert.equal(usher.broker.hasQueue('reaped-http'), true, 'the new owner\'s queue kept');
    const other = await usher.connect();
    assert.equal(await channelAnswer(other, (ch) => ch.checkQueue('reaped-http')), 405,
      'locked to the new owner');
  } finally {
    disk.refusing = false;
    await usher.close();
  }
});

it('twenty exclusive queues refused at once stay locked, and a restart deletes them all', {
  timeout: 30_000,
}, async () => {
  const dir = tempDir('usher-exclusive-many-');
  const names = Array.from({ length: 20 }, (_, i) => `reaped-many-${i}`);
  const disk = refusingDisk();
  const open = async (storeIo: StoreIo) => {
    const broker = await openBroker(dir.path, { storeIo });
    const server = await createAmqpServer({
      broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 1024 * 1024,
    });
    const { port } = await server.listen(0, '127.0.0.1');
    const connect = async () => {
      const connection = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`);
      connection.on('error', () => {});
      return connection;
    };
    return { broker, connect, close: async () => {
      await server.close();
      await broker.close();
    } };
  };
  let usher = await open(disk.io);
  try {
    const owner = await usher.connect();
    const channel = await owner.createChannel();
    for (const name of names) await channel.assertQueue(name, { exclusive: true });

    disk.refusing = true;
    await owner.close();
    // Their deletes share writes: a few refused writes refused them all.
    await until('deletes refused', () => disk.refused >= 3);
    const other = await usher.connect();
    for (const name of names.slice(0, 3)) {
      assert.equal(await channelAnswer(other, (ch) => ch.checkQueue(name)), 405, name);
    }
    await other.close();
    assert.deepEqual(names.filter((name) => !usher.broker.hasQueue(name)), [], 'all still there');
    await usher.close();

    disk.refusing = false;
    usher = await open(nodeIo);
    assert.deepEqual(names.filter((name) => usher.broker.hasQueue(name)), [], 'all gone at start');
    const after = await usher.connect();
    assert.equal(await channelAnswer(after, (ch) => ch.assertQueue(names[0])), 'ok');
    await after.close();
  } finally {
    disk.refusing = false;
    await usher.close().catch(() => {});
    dir.remove();
  }
});
