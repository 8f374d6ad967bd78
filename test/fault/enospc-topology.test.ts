// A full disk under exchanges.journal (src/amqp/topology-journal.ts):
// a bind while there is no space is refused on its channel with 506
// RESOURCE_ERROR, the connection and the broker carry on, and once space
// is back a bind works and survives a restart, with the bindings made
// before the disk filled. (The journal's last page may take a few more
// records before the disk refuses one.)

import assert from 'node:assert/strict';
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';

import amqp, { type ChannelModel } from 'amqplib';

import { ServeProcess } from './serve-process.js';
import { fillUp, withTmpfs } from './tmpfs.js';

const MiB = 1024 * 1024;

/** Keys of `keys` that a mandatory publish to `exchange` finds no binding for. */
async function unroutable(connection: ChannelModel, exchange: string, keys: string[]): Promise<string[]> {
  const channel = await connection.createConfirmChannel();
  const returned: string[] = [];
  channel.on('return', (message) => returned.push(message.fields.routingKey));
  for (const key of keys) channel.publish(exchange, key, Buffer.from(key), { mandatory: true });
  await channel.waitForConfirms();
  await channel.close();
  return returned;
}

it('refuses a bind on a full disk with 506 and keeps every bind-ok\'d binding', async (t) => {
  const result = await withTmpfs(16 * MiB, async (mount) => {
    const usher = new ServeProcess(join(mount, 'data'), ['--disk-floor', '0']);
    await usher.start();
    const url = () => usher.amqpUrl;
    let connection = await amqp.connect(url());
    connection.on('error', () => {});
    try {
      const setup = await connection.createChannel();
      await setup.assertExchange('full', 'direct', { durable: true });
      await setup.assertQueue('full.q', { durable: true });
      await setup.bindQueue('full.q', 'full', 'before');

      const filler = join(mount, 'filler');
      fillUp(filler);
      // The journal's last page may still have room for a few records.
      const bound = ['before'];
      let refused: Error | null = null;
      for (let i = 0; i < 200 && refused === null; i++) {
        const channel = await connection.createChannel();
        const closed = new Promise<Error>((resolve) => channel.once('error', resolve));
        try {
          await channel.bindQueue('full.q', 'full', `during.${i}`);
          bound.push(`during.${i}`);
          await channel.close();
        } catch {
          refused = await closed;
        }
      }
      assert.ok(refused !== null, 'every bind succeeded on a full disk');
      assert.match(refused.message, /506/);

      unlinkSync(filler);
      const again = await connection.createChannel();
      await again.bindQueue('full.q', 'full', 'after');
      bound.push('after');
      await connection.close();

      await usher.kill();
      await usher.start();
      connection = await amqp.connect(url());
      connection.on('error', () => {});
      assert.deepEqual(await unroutable(connection, 'full', bound), []);
    } finally {
      await connection.close().catch(() => {});
      await usher.kill();
    }
  });
  if (result.skipped) t.skip(result.skipped);
});
