// Outgoing frames. Each message becomes one Buffer, sized before it is
// written, so a connection can queue them and write many per tick.
//
//   frame: [type u8][channel u16][size u32][payload: size bytes][0xCE]
//
// A message with content is its method frame, one content header frame
// and as many body frames as frame-max requires, back to back:
//
//   [method][header][body 1]...[body n]     n = ceil(body / (frame-max - 8))

import {
  FRAME_BODY,
  FRAME_END,
  FRAME_HEADER,
  FRAME_HEARTBEAT,
  FRAME_MAX_LIMIT,
  FRAME_METHOD,
  FRAME_MIN_SIZE,
  FRAME_OVERHEAD,
} from './constants.js';
import {
  type PropertiesInput,
  contentHeaderSize,
  writeContentHeader,
} from './content.js';
import { AmqpEncodeError } from './errors.js';
import { type Method, methodInfo, methodPayloadSize, writeMethod } from './methods.js';
import { checkInteger } from './wire.js';

/** The one heartbeat frame: type 8 on channel 0, empty. */
export function heartbeatFrame(): Buffer {
  return Buffer.from([FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END]);
}

/** Bytes of `method` as one frame. */
export function methodFrameSize(method: Method): number {
  return FRAME_OVERHEAD + methodPayloadSize(method);
}

/**
 * Writes one method frame at `offset` into a buffer with room for
 * methodFrameSize(method) bytes; returns the offset after it. Lets a
 * connection put many small frames (acks, confirms) in one buffer.
 */
export function writeMethodFrame(
  buf: Buffer,
  offset: number,
  channel: number,
  method: Method,
): number {
  checkChannel(channel);
  const end = writeMethod(buf, offset + 7, method);
  writeFrameHeader(buf, offset, FRAME_METHOD, channel, end - offset - 7);
  buf[end] = FRAME_END;
  return end + 1;
}

/** A method without content as a frame of its own. */
export function encodeMethodFrame(channel: number, method: Method): Buffer {
  if (methodInfo(method.name).content) {
    throw new AmqpEncodeError(
      method.name,
      'this method carries content; encode it with encodeContent',
    );
  }
  const buf = Buffer.allocUnsafe(methodFrameSize(method));
  writeMethodFrame(buf, 0, channel, method);
  return buf;
}

/**
 * basic.publish / deliver / get-ok / return with its properties and body,
 * in one Buffer. Body frames carry at most frameMax - 8 bytes; an empty
 * body has no body frame. The header frame must fit in frameMax, or
 * AmqpEncodeError is thrown: the properties are too large to send.
 * `properties` may be the bytes from encodeProperties, to skip encoding
 * stored headers again.
 */
export function encodeContent(
  channel: number,
  method: Method,
  properties: PropertiesInput,
  body: Buffer,
  frameMax: number,
): Buffer {
  checkFrameMax(frameMax);
  if (!methodInfo(method.name).content) {
    throw new AmqpEncodeError(method.name, 'this method carries no content');
  }
  if (!Buffer.isBuffer(body)) {
    throw new AmqpEncodeError(`${method.name} body`, 'expected a Buffer');
  }

  // A header frame cannot be split, so it must fit in frame-max. (Method
  // frames always do: a content method's strings total under 800 bytes.)
  const methodSize = methodFrameSize(method);
  const headerSize = FRAME_OVERHEAD + contentHeaderSize(properties);
  if (headerSize > frameMax) {
    throw new AmqpEncodeError(
      method.name,
      `its content header frame is ${headerSize} bytes, ` + `over frame-max ${frameMax}`,
    );
  }

  const chunk = frameMax - FRAME_OVERHEAD;
  const bodyFrames = Math.ceil(body.length / chunk);
  const size = methodSize + headerSize + body.length + bodyFrames * FRAME_OVERHEAD;
  const buf = Buffer.allocUnsafe(size);
  let at = writeMethodFrame(buf, 0, channel, method);

  const headerEnd = writeContentHeader(buf, at + 7, body.length, properties);
  writeFrameHeader(buf, at, FRAME_HEADER, channel, headerEnd - at - 7);
  buf[headerEnd] = FRAME_END;
  at = headerEnd + 1;

  for (let from = 0; from < body.length; from += chunk) {
    const size = Math.min(chunk, body.length - from);
    writeFrameHeader(buf, at, FRAME_BODY, channel, size);
    body.copy(buf, at + 7, from, from + size);
    buf[at + 7 + size] = FRAME_END;
    at += size + FRAME_OVERHEAD;
  }
  return buf;
}

function writeFrameHeader(
  buf: Buffer,
  offset: number,
  type: number,
  channel: number,
  size: number,
): void {
  buf[offset] = type;
  buf.writeUInt16BE(channel, offset + 1);
  buf.writeUInt32BE(size, offset + 3);
}

function checkChannel(channel: number): void {
  checkInteger(channel, 0, 0xffff, 'channel');
}

function checkFrameMax(frameMax: number): void {
  checkInteger(frameMax, FRAME_MIN_SIZE, FRAME_MAX_LIMIT, 'frameMax');
}
