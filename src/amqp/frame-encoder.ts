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
import { ATTACH_BYTES, type FrameSink } from './outbound.js';
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
  checkNoContent(method);
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
  const layout = contentLayout(method, properties, body, frameMax);
  const buf = Buffer.allocUnsafe(layout.size);
  let at = writeContentHead(buf, 0, channel, method, properties, body.length);
  for (let from = 0; from < body.length; from += layout.chunk) {
    const size = Math.min(layout.chunk, body.length - from);
    writeFrameHeader(buf, at, FRAME_BODY, channel, size);
    body.copy(buf, at + 7, from, from + size);
    buf[at + 7 + size] = FRAME_END;
    at += size + FRAME_OVERHEAD;
  }
  return buf;
}

/**
 * The frames of encodeContent, written into `sink` instead of a Buffer of
 * their own. A body of ATTACH_BYTES or more is not copied: each body
 * frame's header goes into the sink and the body's bytes are attached
 * after it as they are. Throws as encodeContent does, before writing.
 */
export function writeContent(
  sink: FrameSink,
  channel: number,
  method: Method,
  properties: PropertiesInput,
  body: Buffer,
  frameMax: number,
): void {
  const layout = contentLayout(method, properties, body, frameMax);
  if (body.length < ATTACH_BYTES && layout.bodyFrames <= 1) {
    sink.reserve(layout.size);
    let at = writeContentHead(sink.buf, sink.at, channel, method, properties, body.length);
    if (body.length > 0) {
      writeFrameHeader(sink.buf, at, FRAME_BODY, channel, body.length);
      at += 7 + body.copy(sink.buf, at + 7);
      sink.buf[at++] = FRAME_END;
    }
    sink.at = at;
    return;
  }

  sink.reserve(layout.size - body.length - layout.bodyFrames * FRAME_OVERHEAD);
  sink.at = writeContentHead(sink.buf, sink.at, channel, method, properties, body.length);
  for (let from = 0; from < body.length; from += layout.chunk) {
    const size = Math.min(layout.chunk, body.length - from);
    // The previous body frame's end byte, then this one's header.
    const endBefore = from > 0 ? 1 : 0;
    sink.reserve(endBefore + 7);
    if (endBefore === 1) sink.buf[sink.at++] = FRAME_END;
    writeFrameHeader(sink.buf, sink.at, FRAME_BODY, channel, size);
    sink.at += 7;
    sink.attach(body.subarray(from, from + size));
  }
  sink.reserve(1);
  sink.buf[sink.at++] = FRAME_END;
}

/** A method without content, written into `sink`. */
export function writeMethodTo(sink: FrameSink, channel: number, method: Method): void {
  checkNoContent(method);
  sink.reserve(methodFrameSize(method));
  sink.at = writeMethodFrame(sink.buf, sink.at, channel, method);
}

interface ContentLayout {
  /** Bytes of all the frames. */
  size: number;
  /** Body bytes per body frame. */
  chunk: number;
  bodyFrames: number;
}

/**
 * What contentLayout answers, one object for every message sent: each
 * caller reads it before the next call, and a new one cost every
 * delivery 48 bytes.
 */
const LAYOUT: ContentLayout = { size: 0, chunk: 0, bodyFrames: 0 };

/** Checks a content method and sizes its frames (into LAYOUT). */
function contentLayout(
  method: Method,
  properties: PropertiesInput,
  body: Buffer,
  frameMax: number,
): ContentLayout {
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
  LAYOUT.size = methodSize + headerSize + body.length + bodyFrames * FRAME_OVERHEAD;
  LAYOUT.chunk = chunk;
  LAYOUT.bodyFrames = bodyFrames;
  return LAYOUT;
}

/** The method frame and the content header frame; returns the next offset. */
function writeContentHead(
  buf: Buffer,
  offset: number,
  channel: number,
  method: Method,
  properties: PropertiesInput,
  bodySize: number,
): number {
  const at = writeMethodFrame(buf, offset, channel, method);
  const headerEnd = writeContentHeader(buf, at + 7, bodySize, properties);
  writeFrameHeader(buf, at, FRAME_HEADER, channel, headerEnd - at - 7);
  buf[headerEnd] = FRAME_END;
  return headerEnd + 1;
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

function checkNoContent(method: Method): void {
  if (methodInfo(method.name).content) {
    throw new AmqpEncodeError(
      method.name,
      'this method carries content; encode it with encodeContent',
    );
  }
}

function checkChannel(channel: number): void {
  checkInteger(channel, 0, 0xffff, 'channel');
}

function checkFrameMax(frameMax: number): void {
  checkInteger(frameMax, FRAME_MIN_SIZE, FRAME_MAX_LIMIT, 'frameMax');
}
