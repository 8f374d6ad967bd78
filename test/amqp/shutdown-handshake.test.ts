// The listener's close at shutdown tells each open connection (320
// CONNECTION_FORCED) and waits up to a second for its close-ok. A client
// still in its handshake would never answer one: it used to hold the
// whole shutdown for that second.

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';

import amqp from 'amqplib';

import { PROTOCOL_HEADER } from '../../src/amqp/constants.js';
import { createAmqpServer } from '../../src/amqp/server.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';

test('a shutdown does not wait for clients still in their handshake', async () => {
  const dir = tempDir('usher-amqp-shutdown-handshake-');
  const broker = await openBroker(dir.path);
  const server = await createAmqpServer({
    broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 1024 * 1024,
  });
  const { port } = await server.listen(0, '127.0.0.1');
  try {
    // One client open, which is told, and one that sent only the header.
    const open = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`);
    open.on('error', () => {});
    const told = new Promise<unknown>((resolve) => open.once('close', resolve));
    const halfway = connect(port, '127.0.0.1');
    halfway.on('error', () => {});
    await new Promise<void>((resolve) => halfway.once('connect', () => resolve()));
    halfway.write(PROTOCOL_HEADER);
    await new Promise<void>((resolve) => halfway.once('data', () => resolve()));

    const started = Date.now();
    await server.close();
    const took = Date.now() - started;

    assert.ok(took < 600, `the listener took ${took} ms to close`);
    assert.match(String(await told), /320/);
    halfway.destroy();
  } finally {
    await broker.close();
    dir.remove();
  }
});
