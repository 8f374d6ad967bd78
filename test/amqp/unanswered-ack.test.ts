// A basic.ack has no answer, so the broker does not wait for its fdatasync
// (channel-deliveries.ts, UNANSWERED_ACK): the `settled` record is written
// at once and reaches the disk with the next batch that syncs. A power cut
// in between brings the acked message back (at-least-once, as RabbitMQ); a
// confirmed publish after the ack makes the ack durable too.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import amqp from 'amqplib';

import { createAmqpServer } from '../../src/amqp/server.js';
import type { StoreIo } from '../../src/storage/io.js';
import { openBroker, seededRandom, silentLogger, tempDir, until } from '../helpers.js';
import { PowerCutIo } from '../storage/power-cut.js';

const dirs: Array<{ path: string; remove(): void }> = [];
after(() => dirs.forEach((dir) => dir.remove()));
function newDir(): string {
  const dir = tempDir('usher-amqp-ack-');
  dirs.push(dir);
  return dir.path;
}

/** PowerCutIo, counting the writes and syncs that reach it. */
class CountingIo implements StoreIo {
  writes = 0;
  syncs = 0;
  constructor(readonly power: PowerCutIo) {}
  open = (path: string, flags: string) => this.power.open(path, flags);
  ftruncate = (fd: number, length: number) => this.power.ftruncate(fd, length);
  close = (fd: number) => this.power.close(fd);
  unlink = (path: string) => this.power.unlink(path);
  rename = (from: string, to: string) => this.power.rename(from, to);
  fsyncDir = (dir: string) => this.power.fsyncDir(dir);
  writev(fd: number, buffers: readonly Buffer[], position: number): Promise<number> {
    this.writes++;
    return this.power.writev(fd, buffers, position);
  }
  fdatasync(fd: number): Promise<void> {
    this.syncs++;
    return this.power.fdatasync(fd);
  }
}

/**
 * One message published (confirmed), consumed and acked over AMQP; then
 * `afterAck`; then the power goes. Returns the ready messages' bodies on
 * the disk as the cut left it, and how many syncs the ack itself caused.
 */
async function ackThenCut(
  afterAck: (channel: amqp.ConfirmChannel) => Promise<void>,
): Promise<{ survivors: string[]; syncsForAck: number }> {
  const dataDir = newDir();
  const io = new CountingIo(new PowerCutIo());
  const broker = await openBroker(dataDir, { sync: true, storeIo: io, diskFloorBytes: 0 });
  const server = await createAmqpServer({
    broker, logger: silentLogger, dataDir, maxMessageBytes: 1 << 20,
  });
  const { port } = await server.listen(0, '127.0.0.1');
  const connection = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`);
  let syncsForAck: number;
  try {
    const publisher = await connection.createConfirmChannel();
    await publisher.assertQueue('jobs', { durable: true });
    publisher.sendToQueue('jobs', Buffer.from('one'), { persistent: true });
    await publisher.waitForConfirms();

    const consumer = await connection.createChannel();
    const message = await new Promise<amqp.ConsumeMessage>((resolve) => {
      void consumer.consume('jobs', (delivered) => resolve(delivered!));
    });
    const [writes, syncs] = [io.writes, io.syncs];
    consumer.ack(message);
    await until('the ack to be written', () => io.writes > writes);
    await sleep(20);
    syncsForAck = io.syncs - syncs;
    assert.equal(broker.getQueue('jobs').stats.inFlight, 0);

    await afterAck(publisher);
  } finally {
    io.power.cut();
    await io.power.settled();
    await connection.close().catch(() => {});
    await server.close();
  }

  const image = newDir();
  await io.power.image(dataDir, image, 'drop', seededRandom(1), (name) => name === 'usher.lock');
  const reborn = await openBroker(image, { diskFloorBytes: 0 });
  try {
    const ready = await reborn.receive('jobs', { max: 10, waitMs: 0 });
    return { survivors: ready.map((m) => m.body.toString()).sort(), syncsForAck };
  } finally {
    await reborn.close();
  }
}

test('an ack causes no fdatasync: a power cut right after it brings the message back',
  { timeout: 20_000 }, async () => {
  const { survivors, syncsForAck } = await ackThenCut(async () => {});
  assert.equal(syncsForAck, 0);
  assert.deepEqual(survivors, ['one'], 'acked but not yet on disk: delivered again');
});

test('a confirmed publish after an ack makes the ack durable with it',
  { timeout: 20_000 }, async () => {
  const { survivors, syncsForAck } = await ackThenCut(async (publisher) => {
    publisher.sendToQueue('jobs', Buffer.from('two'), { persistent: true });
    await publisher.waitForConfirms();
  });
  assert.equal(syncsForAck, 0);
  assert.deepEqual(survivors, ['two']);
});
