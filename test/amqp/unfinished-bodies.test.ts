// A publish's body is held until its last frame comes, and a
// transaction's publishes until tx.commit. A client that started one on
// each of 150 channels and finished none took 2.5 GB, past
// --memory-budget, for nothing any queue counted; one holding 60 MiB in
// each of 30 transactions took 2 GB (breaker sessions). A connection, and
// all connections together, are bounded (128 MiB and 1 GiB by default,
// smaller here); past that the connection is closed with 506, and the
// others carry on.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { encodeContent } from '../../src/amqp/frame-encoder.js';
import type { Method } from '../../src/amqp/methods.js';
import { useAmqpFixture } from './amqp-fixture.js';
import { FRAME_MAX, Raw } from './raw-client.js';

const MiB = 1024 * 1024;
const fixture = useAmqpFixture('usher-unfinished-bodies-', {},
  { heldBodyLimits: { connection: 32 * MiB, all: 96 * MiB } });

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

test('a connection holding over its bound of unfinished bodies is closed with 506', {
  timeout: 30_000,
}, async () => {
  const bystander = await fixture.connect();
  const raw = new Raw(fixture.port);
  try {
    await raw.open('none');
    await openChannels(raw, 40);
    let held = 0;
    for (let channel = 2; channel < 42 && held <= 32 * MiB; channel++) {
      const publish = unfinishedPublish(channel);
      raw.send(publish.bytes);
      held += publish.held;
    }
    const closed = await raw.expect('connection.close');
    assert.equal(closed?.name === 'connection.close' && closed.replyCode, 506);
    assert.match(closed?.name === 'connection.close' ? closed.replyText : '',
      /this connection holds more than 33554432 bytes of message bodies not published yet/);
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
  // 5 x 30 MiB: over the 96 MiB of all connections if any were still counted.
  for (let round = 0; round < 5; round++) {
    const raw = new Raw(fixture.port);
    try {
      await raw.open('none');
      await openChannels(raw, 30);
      for (let channel = 2; channel < 32; channel++) raw.send(unfinishedPublish(channel).bytes);
      // Read in order: once it answers, the bodies before it are held.
      raw.method(32, { name: 'channel.open' });
      const answer = await raw.expect('channel.open-ok', 'connection.close');
      assert.equal(answer?.name, 'channel.open-ok', `round ${round}`);
    } finally {
      raw.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
});

test('a connection holding over its bound in uncommitted transactions is closed with 506', {
  timeout: 30_000,
}, async () => {
  const raw = new Raw(fixture.port);
  try {
    await raw.open('none');
    await openChannels(raw, 5);
    const method: Method = {
      name: 'basic.publish', exchange: '', routingKey: 'held', mandatory: false, immediate: false,
    };
    // Each transaction holds 8 MiB, well under its own 64 MiB.
    for (let channel = 2; channel < 7; channel++) {
      raw.method(channel, { name: 'tx.select' });
      assert.ok(await raw.expect('tx.select-ok', 'connection.close'));
      for (let m = 0; m < 8; m++) {
        raw.send(encodeContent(channel, method, {}, Buffer.alloc(MiB - 1024, 1), FRAME_MAX));
      }
    }
    const closed = await raw.expect('connection.close');
    assert.equal(closed?.name === 'connection.close' && closed.replyCode, 506);
    assert.match(closed?.name === 'connection.close' ? closed.replyText : '',
      /this connection holds more than 33554432 bytes/);
  } finally {
    raw.close();
  }
});
