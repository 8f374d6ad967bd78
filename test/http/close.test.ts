// Closing the server is not held up by connections that never send a
// request (left behind by clients that aborted one), but does let a
// request in flight finish.

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { it } from 'node:test';

import { startHttp } from './harness.js';

it('closes within the grace period despite a silent connection', async () => {
  const h = await startHttp();
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = h.app.server.address() as { port: number };

  const silent = connect(port, '127.0.0.1');
  await new Promise((resolve) => silent.once('connect', resolve));
  const closed = new Promise((resolve) => silent.once('close', resolve));

  const began = Date.now();
  await h.close();
  await closed;
  const took = Date.now() - began;
  assert.ok(took < 5000, `close took ${took} ms`);
});
