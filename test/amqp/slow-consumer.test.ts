// Consumer-side protection (issue #6) with amqplib on loopback: prefetch
// bounds what a consumer holds under load, a consumer that stops reading
// its socket does not make the broker buffer the queue for it, and a
// stalled consumer on one queue does not hold up another queue.

import assert from 'node:assert/strict';
import {
  connect as connectTcp,
  createServer,
  type AddressInfo,
  type Server,
  type Socket,
} from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';

import amqp, { type ChannelModel } from 'amqplib';

import type { Broker } from '../../src/broker/broker.js';
import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let server: AmqpServer;
let url: string;
const opened: ChannelModel[] = [];
const relays: Server[] = [];

before(async () => {
  dir = tempDir('usher-slow-consumer-');
  broker = await openBroker(dir.path);
  server = await createAmqpServer({
    broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 1024 * 1024,
  });
  const address = await server.listen(0, '127.0.0.1');
  url = `amqp://guest:guest@127.0.0.1:${address.port}`;
});

after(async () => {
  for (const connection of opened) await connection.close().catch(() => {});
  for (const relay of relays) relay.close();
  await server.close();
  await broker.close();
  dir.remove();
});

async function connect(): Promise<ChannelModel> {
  const connection = await amqp.connect(url);
  connection.on('error', () => {});
  opened.push(connection);
  return connection;
}

/**
 * A client connection through a loopback relay whose broker side can stop
 * reading: the broker then meets a consumer that takes nothing from its
 * socket, as a stuck or slow consumer process would.
 */
async function connectStallable(): Promise<{ connection: ChannelModel; stall(on: boolean): void }> {
  const brokerPort = Number(new URL(url).port);
  let upstream: Socket | null = null;
  const relay: Server = createServer((client) => {
    const toBroker = connectTcp(brokerPort, '127.0.0.1');
    upstream = toBroker;
    client.pipe(toBroker);
    toBroker.pipe(client);
    client.on('error', () => toBroker.destroy());
    toBroker.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const { port } = relay.address() as AddressInfo;
  const connection = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`);
  connection.on('error', () => {});
  opened.push(connection);
  relays.push(relay);
  return {
    connection,
    stall(on) {
      if (on) upstream?.pause();
      else upstream?.resume();
    },
  };
}

async function fill(queue: string, count: number, bytes: number): Promise<void> {
  await broker.createQueue(queue, {});
  for (let sent = 0; sent < count; sent += 100) {
    const batch = Array.from({ length: Math.min(100, count - sent) }, () => ({
      body: Buffer.alloc(bytes, 0x61),
    }));
    await broker.publish(queue, batch);
  }
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('consumer-side protection', () => {
  it('holds a consumer to its prefetch however deep the queue', async () => {
    await fill('prefetched', 500, 100);
    const channel = await (await connect()).createChannel();
    await channel.prefetch(5);
    let received = 0;
    await channel.consume('prefetched', () => void received++, { noAck: false });

    await until('5 deliveries', () => received === 5);
    await sleep(200);
    assert.equal(received, 5);
    const { stats } = broker.getQueue('prefetched');
    assert.equal(stats.inFlight, 5);
    assert.equal(stats.ready, 495);
  });

  it('buffers a bounded amount for a no-ack consumer that stops reading', async () => {
    const size = 32 * 1024;
    const count = 1000;
    await fill('unread', count, size);
    const { connection, stall } = await connectStallable();
    const channel = await connection.createChannel();
    let received = 0;
    stall(true);
    void channel.consume('unread', () => void received++, { noAck: true });

    // Let the broker push as far as it will.
    let delivered = -1;
    await until('the broker to stop pushing', () => {
      const now = broker.getQueue('unread').stats.delivered;
      const settled = now === delivered;
      delivered = now;
      return settled && now > 0;
    });
    await sleep(300);
    delivered = broker.getQueue('unread').stats.delivered;
    // 4 MiB of socket buffer in the broker, one push batch past it, and
    // what the kernel holds on both ends of the loopback connection.
    assert.ok(delivered * size < 12 * 1024 * 1024, `${delivered} messages pushed`);
    assert.ok(broker.getQueue('unread').stats.ready > 0, 'the rest waits in the queue');

    stall(false);
    await until('every message', () => received === count, 30_000);
    assert.equal(broker.getQueue('unread').stats.total, 0);
  });

  it('keeps serving one queue while the consumer of another is stuck', async () => {
    await fill('stuck', 300, 32 * 1024);
    await fill('flowing', 300, 100);

    const stuck = await connectStallable();
    const stuckChannel = await stuck.connection.createChannel();
    stuck.stall(true);
    void stuckChannel.consume('stuck', () => {}, { noAck: true });
    const slow = await (await connect()).createChannel();
    await slow.prefetch(1);
    await slow.consume('stuck', () => {}, { noAck: false });

    const channel = await (await connect()).createChannel();
    await channel.prefetch(10);
    let acked = 0;
    await channel.consume('flowing', (message) => {
      if (message === null) return;
      channel.ack(message);
      acked++;
    });
    await until('all of the flowing queue', () => acked === 300);
    assert.ok(broker.getQueue('stuck').stats.ready > 0);
    stuck.stall(false);
  });
});
