// A consumer whose process hangs (neither reads nor sends; its kernel
// keeps the TCP connection open with a zero window) while a backlog is
// delivered to it. The broker stops reading a peer that does not read what
// it sends; the heartbeat check took that pause for a sign of life, so the
// peer kept its connection and its deliveries for good (breaker). Now a
// paused peer is alive only while it reads some of what was sent, within
// 15 s.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { useAmqpFixture } from './amqp-fixture.js';
import { Raw } from './raw-client.js';

const usher = useAmqpFixture('usher-amqp-hung-peer-');

async function until(what: string, done: () => boolean, ms: number): Promise<number> {
  const started = Date.now();
  while (!done()) {
    if (Date.now() - started > ms) assert.fail(`no ${what} after ${ms} ms`);
    await sleep(20);
  }
  return Date.now() - started;
}

test('a consumer that stops reading and sending is dropped after missed heartbeats', {
  timeout: 30_000,
}, async () => {
  // More than the kernel's buffers on both sides and the broker's own 4 MiB.
  const loader = await usher.connect();
  const channel = await loader.createConfirmChannel();
  await channel.assertQueue('hung-backlog', { durable: false });
  const body = Buffer.alloc(900 * 1024, 7);
  for (let i = 0; i < 40; i++) channel.sendToQueue('hung-backlog', body);
  await channel.waitForConfirms();

  const hung = new Raw(usher.port);
  try {
    await hung.open('none', new Map(), 1);
    await hung.consume('hung-backlog', 'hung', false);
    // From here its process is hung.
    hung.socket.pause();
    const stats = () => usher.broker.getQueue('hung-backlog').stats;
    await until('deliveries', () => stats().inFlight > 0, 5000);

    // Handed back once the connection is dropped: 15 s after its socket
    // last took anything (RabbitMQ's send_timeout), then 2 to 3 intervals
    // of 1 s heartbeats.
    await until('drop of the hung peer', () => stats().inFlight === 0, 22_000);
    assert.equal(stats().ready, 40);
  } finally {
    hung.close();
  }
});
