// tx.commit-ok promises that the transaction's acks, nacks and rejects are
// as durable as its publishes: a consumer that commits its acks must never
// see those messages again after a broker crash. Found by SIGKILLing
// `usher serve` right after commit-ok: committed acks came back, because
// commit-ok waited for the publishes only and the acks were still on their
// way to the log. Here the broker's ack and nack are held at a gate, and
// commit-ok must not come before they land.

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { AMQPClient } from '@cloudamqp/amqp-client';

import type { Broker } from '../../src/broker/broker.js';
import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let server: AmqpServer;
let url: string;
/** Settlements the broker has written, in order. */
const landed: string[] = [];
let openGate: () => void = () => {};

before(async () => {
  dir = tempDir('usher-amqp-tx-durable-');
  broker = await openBroker(dir.path);
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  const ack = broker.ack.bind(broker);
  const nack = broker.nackMany.bind(broker);
  broker.ack = async (...args: Parameters<Broker['ack']>) => {
    await gate;
    const done = await ack(...args);
    landed.push('ack');
    return done;
  };
  broker.nackMany = async (...args: Parameters<Broker['nackMany']>) => {
    await gate;
    const done = await nack(...args);
    landed.push('nack');
    return done;
  };
  server = await createAmqpServer({
    broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 1024 * 1024,
  });
  const address = await server.listen(0, '127.0.0.1');
  url = `amqp://guest:guest@127.0.0.1:${address.port}`;
});

after(async () => {
  openGate();
  await server.close();
  await broker.close();
  dir.remove();
});

it('answers tx.commit-ok only once the committed ack and reject are in the log', async () => {
  const client = new AMQPClient(url);
  await client.connect();
  try {
    await commitAckAndReject(client);
  } finally {
    openGate();
    await client.close();
  }
});

async function commitAckAndReject(client: AMQPClient): Promise<void> {
  const channel = await client.channel();
  await channel.queueDeclare('tx-durable', { durable: true });
  await channel.basicPublish('', 'tx-durable', 'first', { deliveryMode: 2 });
  await channel.basicPublish('', 'tx-durable', 'second', { deliveryMode: 2 });
  await channel.txSelect();
  const first = await channel.basicGet('tx-durable', { noAck: false });
  const second = await channel.basicGet('tx-durable', { noAck: false });
  assert.ok(first !== null && second !== null);
  await first.ack();
  await second.reject(false);

  const committed = channel.txCommit().then(() => [...landed]);
  // Long enough for commit-ok to come back when it does not wait.
  await sleep(200);
  openGate();
  assert.deepEqual((await committed).sort(), ['ack', 'nack']);
}
