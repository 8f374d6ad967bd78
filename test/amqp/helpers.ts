// Helpers for the AMQP wire tests: bytes written by hand, decoding whole
// streams, and chunks laid out like the pooled buffers sockets hand over.

import assert from 'node:assert/strict';

import { PROTOCOL_HEADER } from '../../src/amqp/constants.js';
import { AmqpError } from '../../src/amqp/errors.js';
import {
  AmqpFrameDecoder,
  type FrameDecoderOptions,
  type Inbound,
} from '../../src/amqp/frame-decoder.js';
import { encodeContent } from '../../src/amqp/frame-encoder.js';
import type { Method } from '../../src/amqp/methods.js';

/**
 * Bytes from hex pairs and "quoted ASCII", with # comments to line end:
 *   wire('01 0001 "hi" ce  # a comment')
 */
export function wire(text: string): Buffer {
  const hex = text
    .replace(/#.*$/gm, '')
    .replace(/"([^"]*)"/g, (_m, s: string) =>
      Buffer.from(s, 'latin1').toString('hex'),
    )
    .replace(/\s+/g, '');
  assert.match(hex, /^([0-9a-f]{2})*$/i, 'wire(): odd or non-hex digits');
  return Buffer.from(hex, 'hex');
}

/** A copy of `bytes` placed `offset` bytes into a larger ArrayBuffer. */
export function pooled(bytes: Buffer, offset: number): Buffer {
  const backing = new ArrayBuffer(offset + bytes.length + 7);
  new Uint8Array(backing).fill(0xee);
  const view = Buffer.from(backing, offset, bytes.length);
  bytes.copy(view);
  return view;
}

/** Pushes each chunk in turn; returns everything decoded. */
export function decodeChunks(
  chunks: readonly Buffer[],
  options?: FrameDecoderOptions,
): Inbound[] {
  const decoder = new AmqpFrameDecoder(options);
  return chunks.flatMap((chunk) => decoder.push(chunk));
}

/** `stream` cut at the given points. */
export function cutAt(stream: Buffer, points: readonly number[]): Buffer[] {
  const pieces: Buffer[] = [];
  let from = 0;
  for (const point of [...points, stream.length]) {
    pieces.push(stream.subarray(from, point));
    from = point;
  }
  return pieces;
}

/** Splits back-to-back frames into one Buffer per frame. */
export function splitFrames(frames: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < frames.length;) {
    const size = frames.readUInt32BE(at + 3);
    out.push(frames.subarray(at, at + size + 8));
    at += size + 8;
  }
  return out;
}

/** A raw frame around `payload`. */
export function frame(
  type: number,
  channel: number,
  payload: Buffer,
  end = 0xce,
): Buffer {
  const out = Buffer.alloc(payload.length + 8);
  out[0] = type;
  out.writeUInt16BE(channel, 1);
  out.writeUInt32BE(payload.length, 3);
  payload.copy(out, 7);
  out[out.length - 1] = end;
  return out;
}

/** The error of the one connection-error among `events`. */
export function connectionError(
  events: readonly Inbound[],
  replyCode: number,
  pattern: RegExp,
): { error: AmqpError; fatal: boolean } {
  const errors = events.filter((e) => e.type === 'connection-error');
  assert.equal(
    errors.length,
    1,
    `one connection-error in ${JSON.stringify(events.map((e) => e.type))}`,
  );
  const event = errors[0];
  assert.ok(event.type === 'connection-error');
  assert.equal(event.error.replyCode, replyCode, event.error.message);
  assert.equal(event.error.scope, 'connection');
  assert.match(event.error.message, pattern);
  return event;
}

export const closeOk: Method = { name: 'connection.close-ok' };

/** A basic.deliver as the broker sends one, for encoder tests. */
export const deliver: Method = {
  name: 'basic.deliver',
  consumerTag: 'ctag-1',
  deliveryTag: 42,
  redelivered: false,
  exchange: 'orders',
  routingKey: 'eu',
};

const publish: Method = {
  name: 'basic.publish',
  exchange: '',
  routingKey: 'q',
  mandatory: false,
  immediate: false,
};

/** A basic.publish of `body` as its separate frames. */
export function message(
  channel: number,
  body: Buffer,
  frameMax = 8192,
): Buffer[] {
  return splitFrames(encodeContent(channel, publish, {}, body, frameMax));
}

/** A server-side decoder past the protocol header. */
export function opened(options: FrameDecoderOptions = {}): AmqpFrameDecoder {
  const decoder = new AmqpFrameDecoder(options);
  assert.deepEqual(decoder.push(PROTOCOL_HEADER), [
    { type: 'protocol-header' },
  ]);
  return decoder;
}

/** Events as short strings: "1:basic.publish", "header", ... */
export function types(events: readonly Inbound[]): string[] {
  return events.map((e) =>
    e.type === 'method' ? `${e.channel}:${e.method.name}` : e.type,
  );
}
