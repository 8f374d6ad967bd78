// A publish's body is held until its last frame comes. A client that
// started one on each of 150 channels and finished none took 2.5 GB, past
// --memory-budget, for nothing any queue counted (breaker session). Now a
// connection may hold 64 MiB of unfinished bodies, and all of them
// together 256 MiB (at least 2 and 8 of the largest message); past that
// the connection is closed with 506, and the others carry on.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { encodeContent } from '../../src/amqp/frame-encoder.js';
import type { Method } from '../../src/amqp/methods.js';
import { useAmqpFixture } from './amqp-fixture.js';
import { FRAME_MAX, Raw } from './raw-client.js';

const fixture = useAmqpFixture('usher-unfinished-bodies-');

const MiB = 1024 * 1024;

/** A publish of a 1 MiB body (the fixture's largest) on `channel`, all but its last frame. */
function unfinishedPublish(channel: number): { bytes: Buffer; held: number } {
  const method: Method = {
    name: 'basic.publish', exchange: '', routingKey: 'unfinished', mandatory: false,
    immediate: false,
  };
  const whole = encodeContent(channel, method, {}, Buffer.alloc(MiB, 7), FRAME_MAX);
  // Frames: type (1), channel (2), size (4), payload, end (1).
  let at = 0;
  let last = 0;
  while (at < whole.length) {
    last = at;
    at += 8 + whole.readUInt32BE(at + 3);
  }
  return { bytes: whole.subarray(0, last), held: MiB - (whole.length - last - 8) };
}

async function openChannels(raw: Raw, count: number): Promise<void> {
  for (let channel = 2; channel < 2 + count; channel++) {
    raw.method(channel, { name: 'channel.open' });
  }
  for (let i = 0; i < count; i++) assert.ok(await raw.expect('channel.open-ok'));
}

test('a connection holding over 64 MiB of unfinished bodies is closed with 506', {
  timeout: 30_000,
}, async () => {
  const bystander = await fixture.connect();
  const raw = new Raw(fixture.port);
  try {
    await raw.open('none');
    await openChannels(raw, 70);
    let held = 0;
    for (let channel = 2; channel < 72 && held <= 64 * MiB; channel++) {
      const publish = unfinishedPublish(channel);
      raw.send(publish.bytes);
      held += publish.held;
    }
    const closed = await raw.expect('connection.close');
    assert.equal(closed?.name === 'connection.close' && closed.replyCode, 506);
    assert.match(closed?.name === 'connection.close' ? closed.replyText : '',
      /this connection hold more than 67108864 bytes of message bodies not finished/);
  } finally {
    raw.close();
  }
  // Others carry on.
  const channel = await bystander.createChannel();
  await channel.assertQueue('bystander');
});

test('unfinished bodies of closed connections are let go of', {
  timeout: 60_000,
}, async () => {
  // 5 x 60 MiB: over the 256 MiB for all connections if any were still counted.
  for (let round = 0; round < 5; round++) {
    const raw = new Raw(fixture.port);
    try {
      await raw.open('none');
      await openChannels(raw, 60);
      for (let channel = 2; channel < 62; channel++) raw.send(unfinishedPublish(channel).bytes);
      // Read in order: once it answers, the bodies before it are held.
      raw.method(62, { name: 'channel.open' });
      const answer = await raw.expect('channel.open-ok', 'connection.close');
      assert.equal(answer?.name, 'channel.open-ok', `round ${round}`);
    } finally {
      raw.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
});
