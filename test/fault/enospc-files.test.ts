// A full disk under the small JSON files beside the log (users.json,
// exchanges.json): a user added or an exchange declared while there is no
// space is refused as a store failure that names the file (HTTP 503
// STORE_UNAVAILABLE, AMQP 506 RESOURCE_ERROR on the channel), not as an
// internal error, and works again once space is back. Found by filling a
// tmpfs under `usher serve`: both answered "internal error".

import assert from 'node:assert/strict';
import { existsSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';

import amqp from 'amqplib';

import { ServeProcess } from './serve-process.js';
import { fillUp, withTmpfs } from './tmpfs.js';

const MiB = 1024 * 1024;

it('refuses a user add and an exchange declare on a full disk as store failures', async (t) => {
  const result = await withTmpfs(16 * MiB, async (mount) => {
    const usher = new ServeProcess(join(mount, 'data'), ['--disk-floor', '0']);
    await usher.start();
    const filler = join(mount, 'filler');
    const connection = await amqp.connect(usher.amqpUrl);
    connection.on('error', () => {});
    try {
      fillUp(filler);

      const added = await usher.request('PUT', '/admin/users/late', { password: 'a long password' });
      assert.equal(added.status, 503, JSON.stringify(added.json));
      assert.equal(added.json.error.code, 'STORE_UNAVAILABLE');
      assert.match(added.json.error.message, /users\.json/);
      assert.equal(existsSync(join(mount, 'data', 'users.json.tmp')), false, 'a half-written temp file stayed');

      const channel = await connection.createChannel();
      const closed = new Promise<Error>((resolve) => channel.once('error', resolve));
      await assert.rejects(channel.assertExchange('late', 'fanout'));
      assert.match((await closed).message, /506/);

      unlinkSync(filler);
      const again = await usher.request('PUT', '/admin/users/late', { password: 'a long password' });
      assert.equal(again.status, 201, JSON.stringify(again.json));
      const retried = await connection.createChannel();
      await retried.assertExchange('late', 'fanout');
    } finally {
      await connection.close().catch(() => {});
      await usher.kill();
    }
  });
  if (result.skipped) t.skip(result.skipped);
});
