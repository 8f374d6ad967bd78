// A client's connection.close: Usher answers close-ok and leaves the
// socket for the client to close, as RabbitMQ does. Closing it first, the
// client's reader could meet the end of the stream before its own close
// was done, and amqp091-go reported a clean Close() as error 501 "EOF".
// What the connection held (exclusive queues) goes once the client hangs up.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { useAmqpFixture } from './amqp-fixture.js';
import { Raw } from './raw-client.js';

const usher = useAmqpFixture('usher-amqp-client-close-');

/** Resolves true once the server hangs up on `raw`, false after `ms`. */
function hungUp(raw: Raw, ms: number): Promise<boolean> {
  if (raw.socket.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    raw.socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

test('after close-ok the socket stays open until the client hangs up; then its exclusive queue goes', {
  timeout: 10_000,
}, async () => {
  const raw = new Raw(usher.port);
  await raw.open('none');
  raw.method(1, {
    name: 'queue.declare', queue: 'client-close-exclusive', passive: false, durable: false,
    exclusive: true, autoDelete: false, noWait: false, arguments: new Map(),
  });
  assert.ok(await raw.expect('queue.declare-ok'));

  raw.method(0, { name: 'connection.close', replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 });
  assert.ok(await raw.expect('connection.close-ok'));
  assert.equal(await hungUp(raw, 500), false, 'the server hung up before the client did');

  raw.close();
  const deadline = Date.now() + 3000;
  while (usher.broker.hasQueue('client-close-exclusive') && Date.now() < deadline) await sleep(20);
  assert.equal(usher.broker.hasQueue('client-close-exclusive'), false, 'the exclusive queue outlived its connection');
});
