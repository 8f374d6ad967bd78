// After a crash, a message a consumer held unacked comes back marked
// redelivered (src/broker/crash-marks.ts): the crash logged no hand-back,
// and a consumer that checks for duplicates only when the flag is set
// processed it twice. Every message of the crashed run is marked, over
// AMQP and HTTP, through a later clean restart too; none published after.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import type { ConsumeMessage } from 'amqplib';

import { tempDir } from '../helpers.js';
import { ServeProcess } from './serve-process.js';

let dir: ReturnType<typeof tempDir>;
let usher: ServeProcess;

before(async () => {
  dir = tempDir('usher-crash-redelivered-');
  usher = new ServeProcess(dir.path);
  await usher.start();
});

after(async () => {
  await usher.kill();
  dir.remove();
});

/** Publishes `bodies` to `queue` (durable) over AMQP, confirmed. */
async function publish(queue: string, bodies: string[]): Promise<void> {
  const connection = await usher.amqpConnection();
  try {
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue(queue, { durable: true });
    for (const body of bodies) channel.sendToQueue(queue, Buffer.from(body), { persistent: true });
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}

/** Takes `count` deliveries from `queue` over AMQP and acks them: body => redelivered. */
async function consumeAll(queue: string, count: number): Promise<Map<string, boolean>> {
  const connection = await usher.amqpConnection();
  try {
    const channel = await connection.createChannel();
    const got: ConsumeMessage[] = [];
    await channel.consume(queue, (message) => { if (message !== null) got.push(message); });
    for (let waited = 0; got.length < count && waited < 10_000; waited += 20) await sleep(20);
    assert.equal(got.length, count, `deliveries from ${queue}`);
    for (const message of got) channel.ack(message);
    await channel.close();
    return new Map(got.map((m) => [m.content.toString(), m.fields.redelivered]));
  } finally {
    await connection.close();
  }
}

/** Stops the broker with SIGTERM and waits for it to exit. */
async function stopCleanly(): Promise<void> {
  // stdout runs on across restarts: wait for one more line than now.
  const stopped = () => usher.stdout.split('usher stopped').length;
  const before = stopped();
  usher.signal('SIGTERM');
  for (let waited = 0; stopped() === before && waited < 20_000; waited += 20) await sleep(20);
  assert.equal(stopped(), before + 1, 'a clean stop');
  await usher.kill();
}

describe('redelivered after a crash', () => {
  it('marks every message the crashed run held, the unacked delivery among them', async () => {
    await publish('held', ['a', 'b', 'c']);
    // One delivered and left unacked when the broker dies.
    const connection = await usher.amqpConnection();
    const channel = await connection.createChannel();
    await channel.prefetch(1);
    const first = await new Promise<ConsumeMessage>((resolve) => {
      void channel.consume('held', (message) => { if (message !== null) resolve(message); });
    });
    assert.equal(first.fields.redelivered, false);

    await usher.kill();
    await usher.start();
    await publish('held', ['d']);

    const seen = await consumeAll('held', 4);
    assert.deepEqual(Object.fromEntries(seen), { a: true, b: true, c: true, d: false });
  });

  it('keeps the mark through a clean restart, and shows it over HTTP with the attempt unchanged', async () => {
    await publish('kept', ['e']);
    await usher.kill();
    await usher.start();
    await stopCleanly();
    await usher.start();
    await publish('kept', ['f']);

    const { status, json } = await usher.request('POST', '/queues/kept/receive', { max: 2 });
    assert.equal(status, 200);
    type Received = { body?: string; bodyBase64?: string; redelivered: boolean; attempt: number };
    const byBody = Object.fromEntries(json.messages.map((m: Received) =>
      [m.body ?? Buffer.from(m.bodyBase64 ?? '', 'base64').toString(), [m.redelivered, m.attempt]]));
    assert.deepEqual(byBody, { e: [true, 1], f: [false, 1] });
  });

  it('marks what an HTTP consumer held at a clean stop', async () => {
    await publish('leased', ['h']);
    const { json } = await usher.request('POST', '/queues/leased/receive', { max: 1 });
    assert.equal(json.messages[0].redelivered, false);
    await stopCleanly();
    await usher.start();
    const { json: again } = await usher.request('POST', '/queues/leased/receive', { max: 1 });
    assert.deepEqual([again.messages[0].redelivered, again.messages[0].attempt], [true, 1]);
  });

  it('marks nothing after a clean stop of a run that never crashed', async () => {
    // The mark so far covers every message above: a queue of new ones.
    await publish('clean', ['g']);
    await stopCleanly();
    await usher.start();
    const seen = await consumeAll('clean', 1);
    assert.deepEqual(Object.fromEntries(seen), { g: false });
  });
});
