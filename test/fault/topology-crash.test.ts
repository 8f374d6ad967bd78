// SIGKILL while AMQP clients bind and unbind (issue #4): after every
// restart each binding whose bind-ok came is there, and each whose
// unbind-ok came is gone. Checked through routing: a mandatory publish
// with a binding's key comes back (basic.return) exactly when the
// binding is missing. Several channels bind at once, so the journal's
// shared writes (src/amqp/topology-journal.ts) are crashed too, and a
// low compaction floor makes some rounds crash around a compaction.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, it } from 'node:test';


import { tempDir } from '../helpers.js';
import { ServeProcess } from './serve-process.js';

const ROUNDS = Number(process.env.USHER_TOPOLOGY_CRASH_ROUNDS ?? 4);
const BINDERS = 4;
const EXCHANGE = 'crash.bindings';
const QUEUE = 'crash.bound';

let dir: ReturnType<typeof tempDir>;
let usher: ServeProcess;

before(async () => {
  dir = tempDir('usher-topology-crash-');
  usher = new ServeProcess(dir.path, ['--amqp-journal-compact', '16KiB']);
  await usher.start();
});

after(async () => {
  await usher.kill();
  dir.remove();
});

/** The keys among `keys` that route nowhere: each mandatory publish that came back. */
async function unroutable(keys: readonly string[]): Promise<Set<string>> {
  const connection = await usher.amqpConnection();
  try {
    const channel = await connection.createConfirmChannel();
    const returned = new Set<string>();
    channel.on('return', (message) => returned.add(message.fields.routingKey));
    for (const key of keys) channel.publish(EXCHANGE, key, Buffer.from(key), { mandatory: true });
    // A return comes before the publish's confirm.
    await channel.waitForConfirms();
    await channel.purgeQueue(QUEUE);
    return returned;
  } finally {
    await connection.close();
  }
}

it(`keeps every bind-ok'd binding and no unbind-ok'd one across ${ROUNDS} SIGKILLs`, async () => {
  const setup = await usher.amqpConnection();
  const channel = await setup.createChannel();
  await channel.assertExchange(EXCHANGE, 'direct', { durable: true });
  await channel.assertQueue(QUEUE, { durable: true });
  await setup.close();

  /** Bind-ok'd, with no unbind sent since. */
  const present = new Set<string>();
  /** Unbind-ok'd, with no bind sent since. */
  const absent = new Set<string>();
  let counter = 0;

  for (let round = 0; round < ROUNDS; round++) {
    const connection = await usher.amqpConnection();
    let stop = false;

    const binder = async () => {
      const ch = await connection.createChannel();
      ch.on('error', () => {});
      while (!stop) {
        const key = `k.${counter++}`;
        await ch.bindQueue(QUEUE, EXCHANGE, key);
        present.add(key);
      }
    };
    // Unbinds the bindings of earlier rounds, one by one.
    const unbinder = async () => {
      const ch = await connection.createChannel();
      ch.on('error', () => {});
      const earlier = [...present];
      for (const key of earlier) {
        if (stop) return;
        present.delete(key);
        await ch.unbindQueue(QUEUE, EXCHANGE, key);
        absent.add(key);
      }
    };

    const before = present.size;
    const workers = [...Array.from({ length: BINDERS }, binder), unbinder()]
      .map((work) => work.catch(() => {}));
    // Kill once this round has had some bind-oks, at a varying moment.
    const deadline = Date.now() + 20_000;
    while (counter - before < 40 && Date.now() < deadline) await sleep(10);
    await sleep(Math.floor(Math.random() * 150));
    await usher.kill();
    stop = true;
    await Promise.all(workers);
    assert.ok(present.size > 0, 'no bind-ok came before the kill');

    await usher.start();
    const missing = await unroutable([...present]);
    assert.deepEqual([...missing], [], `round ${round}: bind-ok'd bindings lost after SIGKILL`);
    const kept = await unroutable([...absent]);
    assert.equal(kept.size, absent.size,
      `round ${round}: ${absent.size - kept.size} unbind-ok'd bindings came back`);
  }
});
