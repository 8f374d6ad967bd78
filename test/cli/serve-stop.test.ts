// How fast `usher serve` goes on SIGTERM with the clients a broker
// usually has: an open dashboard (its event stream, a kept-alive
// connection, and a browser's spare connection that has sent nothing yet).
// Closing waits up to 2 s for requests in flight; none of these holds one.

import assert from 'node:assert/strict';
import { get, Agent, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';

import { startUsher } from '../client/usher-process.js';

test('usher serve exits within 1 s of SIGTERM, with a dashboard open', async (t) => {
  const server = await startUsher(['--amqp-port', '-1']);
  const { hostname, port } = new URL(server.url);
  const agent = new Agent({ keepAlive: true });
  const opened: (Socket | IncomingMessage)[] = [];
  t.after(() => {
    for (const socket of opened) socket.destroy();
    agent.destroy();
  });

  const events = await new Promise<IncomingMessage>((resolve, reject) =>
    get(`${server.url}/events`, resolve).once('error', reject));
  events.resume();
  events.on('error', () => {});
  opened.push(events);
  await new Promise<void>((resolve, reject) =>
    get(`${server.url}/healthz`, { agent }, (response) => {
      response.resume();
      response.once('end', resolve);
    }).once('error', reject));
  const silent = connect(Number(port), hostname);
  silent.on('error', () => {});
  opened.push(silent);
  await new Promise((resolve) => silent.once('connect', resolve));

  const signalled = Date.now();
  const code = await server.stop();
  const exited = Date.now();

  assert.equal(code, 0);
  const stopped = server.log().split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg: string; time: number })
    .find((line) => line.msg === 'usher stopped');
  assert.ok(stopped !== undefined, server.log());
  const afterStopped = exited - stopped.time;
  assert.ok(afterStopped < 1000, `exited ${afterStopped} ms after "usher stopped"`);
  assert.ok(exited - signalled < 1000, `exited ${exited - signalled} ms after SIGTERM`);
});
