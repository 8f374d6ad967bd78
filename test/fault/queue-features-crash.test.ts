// SIGKILL while AMQP clients declare queues with arguments Usher keeps
// beside the log (x-expires, x-single-active-consumer, in
// amqp-queues.json). After the restart a client that declares again
// with the same arguments, as clients do when they reconnect, must get
// declare-ok, never 406: a queue must not come back without its
// arguments. The queue used to be created first and its arguments
// written after, so a crash between the two left a queue whose own
// redeclare was refused as inequivalent, and which never expired.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, it } from 'node:test';


import { tempDir } from '../helpers.js';
import { ServeProcess } from './serve-process.js';

const ROUNDS = Number(process.env.USHER_FEATURES_CRASH_ROUNDS ?? 4);
const DECLARERS = 4;
const ARGUMENTS = { 'x-expires': 3_600_000, 'x-single-active-consumer': true };

let dir: ReturnType<typeof tempDir>;
let usher: ServeProcess;

before(async () => {
  dir = tempDir('usher-features-crash-');
  usher = new ServeProcess(dir.path);
  await usher.start();
});

after(async () => {
  await usher.kill();
  dir.remove();
});

it(`keeps each queue's AMQP arguments with it across ${ROUNDS} SIGKILLs during declares`, async () => {
  /** Every queue a declare was sent for, answered or not. */
  const asked: string[] = [];
  const declared = new Set<string>();
  let counter = 0;

  for (let round = 0; round < ROUNDS; round++) {
    const connection = await usher.amqpConnection();
    let stop = false;
    const declarer = async () => {
      const channel = await connection.createChannel();
      channel.on('error', () => {});
      while (!stop) {
        const queue = `features.${counter++}`;
        asked.push(queue);
        await channel.assertQueue(queue, { durable: true, arguments: ARGUMENTS });
        declared.add(queue);
      }
    };
    const before = declared.size;
    const workers = Array.from({ length: DECLARERS }, () => declarer().catch(() => {}));
    const deadline = Date.now() + 20_000;
    while (declared.size - before < 20 && Date.now() < deadline) await sleep(10);
    await sleep(Math.floor(Math.random() * 100));
    await usher.kill();
    stop = true;
    await Promise.all(workers);

    await usher.start();
    const again = await usher.amqpConnection();
    try {
      const refused: string[] = [];
      for (const queue of asked) {
        const channel = await again.createChannel();
        channel.on('error', () => {});
        try {
          await channel.assertQueue(queue, { durable: true, arguments: ARGUMENTS });
          await channel.close();
        } catch (err) {
          refused.push(`${queue}: ${(err as Error).message}`);
        }
      }
      assert.deepEqual(refused, [], `round ${round}: a redeclare with the same arguments was refused`);

      // The arguments were kept, not just forgotten: another x-expires is 406.
      const channel = await again.createChannel();
      channel.on('error', () => {});
      const sample = [...declared][0];
      await assert.rejects(
        channel.assertQueue(sample, { durable: true, arguments: { ...ARGUMENTS, 'x-expires': 1_000 } }),
        /406/);
    } finally {
      await again.close();
    }
  }
});

it('deletes the exclusive queues of a killed broker at the next start', async () => {
  const owner = await usher.amqpConnection();
  const channel = await owner.createChannel();
  const named = await channel.assertQueue('features.exclusive', { durable: true, exclusive: true });
  const generated = await channel.assertQueue('', { durable: true, exclusive: true });
  const shared = await channel.assertQueue('features.shared', { durable: true });
  await usher.kill();
  await usher.start();

  const probe = await usher.amqpConnection();
  try {
    const confirm = await probe.createConfirmChannel();
    const returned: string[] = [];
    confirm.on('return', (message) => returned.push(message.fields.routingKey));
    for (const queue of [named.queue, generated.queue, shared.queue]) {
      confirm.publish('', queue, Buffer.from('probe'), { mandatory: true });
    }
    await confirm.waitForConfirms();
    assert.deepEqual(returned.sort(), [named.queue, generated.queue].sort());
  } finally {
    await probe.close();
  }
});
