// Incremental decoder for one AMQP connection: socket chunks go in, whole
// decoded frames come out, in order. It checks what the wire alone can
// tell: the protocol header, framing, frame-max, method arguments, which
// channel and which peer a method belongs to, and the method -> header ->
// body sequence on each channel. Anything needing broker state (is the
// channel open? does the queue exist?) is left to the broker.
//
//   protocol header: "AMQP" 0 0 9 1                           (8 bytes)
//   frame:  [type u8][channel u16][size u32][payload][0xCE]   (size + 8)

import {
  CLASS,
  FRAME_BODY,
  FRAME_END,
  FRAME_HEADER,
  FRAME_HEADER_SIZE,
  FRAME_HEARTBEAT,
  FRAME_MAX_LIMIT,
  FRAME_METHOD,
  FRAME_MIN_SIZE,
  PROTOCOL_HEADER,
  PROTOCOL_HEADER_0_9,
} from './constants.js';
import { ChunkQueue } from './chunk-queue.js';
import {
  type ContentHeader,
  type ContentHeaderOptions,
  DELIVERY_HEADERS_BUDGET,
  HEADERS_BUDGET,
  decodeContentHeader,
} from './content.js';
import {
  AmqpError,
  BodyTooLargeError,
  ChannelError,
  CommandInvalidError,
  FrameError,
  UnexpectedFrameError,
} from './errors.js';
import {
  type Method,
  type MethodInfo,
  decodeMethod,
  methodInfo,
} from './methods.js';

/** What push() returns, in wire order. */
export type Inbound =
  /** The client's protocol header was right: send connection.start. */
  | { type: 'protocol-header' }
  /** It was not: write `reply`, then close the socket. */
  | { type: 'protocol-mismatch'; reply: Buffer; received: Buffer }
  | { type: 'method'; channel: number; method: Method }
  | { type: 'header'; channel: number; header: ContentHeader }
  /** `body` is a view of the pushed chunk when the frame sat in one. */
  | { type: 'body'; channel: number; body: Buffer; last: boolean }
  | { type: 'heartbeat' }
  /** Close this channel with `error`; the connection carries on. */
  | { type: 'channel-error'; channel: number; error: AmqpError }
  /**
   * Close the connection with `error`. If `fatal`, framing is lost:
   * send connection.close and hang up without waiting for close-ok.
   * Otherwise the decoder now returns only connection.close/close-ok.
   */
  | { type: 'connection-error'; error: AmqpError; fatal: boolean };

export interface FrameDecoderOptions {
  /** Who sends the bytes: 'client' (the default) for the broker side. */
  from?: 'client' | 'server';
  /**
   * Largest frame accepted until `frameMax` is set after tune. RabbitMQ
   * 4.1 raised its pre-tune limit from the spec's 4096 to 8192 so that
   * start-ok can carry OAuth tokens; we do the same.
   */
  frameMax?: number;
  /** Largest body accepted; larger gives a 406 channel-error. */
  maxBodySize?: number;
}

export const INITIAL_FRAME_MAX = 8192;

const HEARTBEAT: Inbound = Object.freeze({ type: 'heartbeat' });
const PROTOCOL_OK: Inbound = Object.freeze({ type: 'protocol-header' });

/** Where a channel is in method -> header -> body. */
interface Content {
  method: MethodInfo;
  /** 'idle': no content expected (the object stays, for the next one). */
  phase: 'idle' | 'header' | 'body';
  remaining: number;
  /** Refused (body too large): read the body frames, drop them. */
  discard: boolean;
}

type State = 'protocol-header' | 'frames' | 'closing' | 'done';

export class AmqpFrameDecoder {
  readonly #from: 'client' | 'server';
  readonly #maxBodySize: number;
  #frameMax: number;
  #state: State;

  readonly #bytes = new ChunkQueue();
  readonly #scratch = Buffer.alloc(FRAME_HEADER_SIZE);

  /**
   * Per channel, kept once made: a Map entry added and deleted for every
   * publish made the Map rehash, the largest allocation in decoding.
   */
  readonly #content = new Map<number, Content>();
  /** Channels whose content is under way (phase other than 'idle'). */
  #contentActive = 0;
  readonly #closingChannels = new Set<number>();
  /** decodeContentHeader's options, one object for every header. */
  readonly #headerOptions: ContentHeaderOptions;

  constructor(options: FrameDecoderOptions = {}) {
    this.#from = options.from ?? 'client';
    this.#maxBodySize = options.maxBodySize ?? Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(this.#maxBodySize) || this.#maxBodySize < 0) {
      throw new RangeError(
        `maxBodySize must be a safe integer >= 0, got ${options.maxBodySize}`,
      );
    }
    this.#headerOptions = {
      maxBodySize: this.#maxBodySize,
      classId: 0,
      methodId: 0,
      // A publisher's headers past its limits are skipped unread.
      headersBudget: this.#from === 'client' ? HEADERS_BUDGET : DELIVERY_HEADERS_BUDGET,
    };
    this.#frameMax = INITIAL_FRAME_MAX;
    if (options.frameMax !== undefined) this.frameMax = options.frameMax;
    // A server speaks first only to refuse a header; we don't expect one.
    this.#state = this.#from === 'client' ? 'protocol-header' : 'frames';
  }

  get frameMax(): number {
    return this.#frameMax;
  }

  /**
   * The negotiated frame-max, set once tune-ok arrives. A frame's payload
   * may be up to frameMax bytes: the spec counts the 8 bytes of header and
   * frame-end too, but clients get this wrong, and RabbitMQ allows them
   * that much slack. Nothing larger is buffered.
   */
  set frameMax(value: number) {
    if (
      !Number.isInteger(value) ||
      value < FRAME_MIN_SIZE ||
      value > FRAME_MAX_LIMIT
    ) {
      throw new RangeError(
        `frame-max must be an integer in [${FRAME_MIN_SIZE}, ` +
          `${FRAME_MAX_LIMIT}], got ${value}`,
      );
    }
    this.#frameMax = value;
  }

  /** Bytes pushed but not yet part of a returned frame. */
  get buffered(): number {
    return this.#bytes.length;
  }

  /**
   * We sent channel.close: until the peer's channel.close-ok, frames on
   * the channel are checked but dropped, except channel.close/close-ok
   * (the channel.close rules of the 0-9-1 class reference).
   */
  closeChannel(channel: number): void {
    this.#closingChannels.add(channel);
  }

  /** We sent connection.close: only connection.close/close-ok from now. */
  closeConnection(): void {
    if (this.#state === 'frames') this.#state = 'closing';
  }

  /** Takes the next chunk; returns every frame now complete. */
  push(chunk: Buffer): Inbound[] {
    const out: Inbound[] = [];
    if (this.#state === 'done') return out;
    this.#bytes.push(chunk);

    if (this.#state === 'protocol-header' && !this.#protocolHeader(out)) {
      return out;
    }
    while (this.#bytes.length >= FRAME_HEADER_SIZE && this.#frame(out)) {
      // each pass decodes one frame
    }
    return out;
  }

  // Reads the client's 8-byte header. Returns false until it is through.
  #protocolHeader(out: Inbound[]): boolean {
    const have = Math.min(this.#bytes.length, 8);
    const received = Buffer.alloc(have);
    this.#bytes.copyInto(received, have);
    const prefix = Math.min(have, 4);
    const isAmqp = received
      .subarray(0, prefix)
      .equals(PROTOCOL_HEADER.subarray(0, prefix));
    if (isAmqp && have < 8) return false;

    if (
      isAmqp &&
      (received.equals(PROTOCOL_HEADER) || received.equals(PROTOCOL_HEADER_0_9))
    ) {
      this.#bytes.skip(8);
      this.#state = 'frames';
      out.push(PROTOCOL_OK);
      return true;
    }
    this.#end();
    out.push({
      type: 'protocol-mismatch',
      reply: Buffer.from(PROTOCOL_HEADER),
      received,
    });
    return false;
  }

  // Decodes one frame if all of it is here. Returns false to wait.
  #frame(out: Inbound[]): boolean {
    // Read the header where it lies; copy it only when split.
    const bytes = this.#bytes;
    let header: Buffer = this.#scratch;
    let at = 0;
    if (bytes.contiguous(FRAME_HEADER_SIZE)) {
      header = bytes.first;
      at = bytes.head;
    } else {
      bytes.copyInto(header, FRAME_HEADER_SIZE);
    }
    const type = header[at];
    const channel = header.readUInt16BE(at + 1);
    const size = header.readUInt32BE(at + 3);

    // Bound the length before waiting for, or allocating, the payload.
    if (size > this.#frameMax) {
      return this.#fatal(
        out,
        new FrameError(
          `frame of type ${type} on channel ${channel} has a ${size}-byte ` +
            `payload; frame-max is ${this.#frameMax}`,
        ),
      );
    }
    if (this.#bytes.length < size + FRAME_HEADER_SIZE + 1) return false;

    const end = this.#bytes.byteAt(FRAME_HEADER_SIZE + size);
    if (end !== FRAME_END) {
      return this.#fatal(
        out,
        new FrameError(
          `frame of type ${type} on channel ${channel} ends with ` +
            `0x${end.toString(16)} after ${size} bytes, not 0xce`,
        ),
      );
    }
    this.#bytes.skip(FRAME_HEADER_SIZE);
    // The payload is read where it lies, as buf[start, start + size): no
    // view is made of a method or header frame, which is decoded at once.
    let buf: Buffer;
    let start = 0;
    if (this.#bytes.contiguous(size)) {
      buf = this.#bytes.first;
      start = this.#bytes.head;
      this.#bytes.skip(size);
    } else {
      buf = this.#bytes.take(size);
    }
    this.#bytes.skip(1);

    try {
      this.#dispatch(type, channel, buf, start, start + size, out);
    } catch (err) {
      if (!(err instanceof AmqpError)) throw err;
      // Once closing, further faults are moot: the first one is reported.
      if (this.#state === 'frames') {
        this.#state = 'closing';
        out.push({ type: 'connection-error', error: err, fatal: false });
      }
    }
    return true;
  }

  #dispatch(
    type: number,
    channel: number,
    buf: Buffer,
    start: number,
    end: number,
    out: Inbound[],
  ): void {
    switch (type) {
      case FRAME_METHOD:
        return this.#method(channel, buf, start, end, out);
      case FRAME_HEADER:
        return this.#header(channel, buf, start, end, out);
      case FRAME_BODY:
        return this.#body(channel, viewOf(buf, start, end), out);
      case FRAME_HEARTBEAT:
        if (channel !== 0) {
          throw new UnexpectedFrameError(
            `heartbeat frame on channel ${channel}; heartbeats use channel 0`,
          );
        }
        if (end !== start) {
          throw new FrameError(
            `heartbeat frame with a ${end - start}-byte payload; ` +
              'heartbeats are empty',
          );
        }
        if (this.#state === 'frames') out.push(HEARTBEAT);
        return;
      default:
        throw new FrameError(
          `unknown frame type ${type} on channel ${channel}`,
        );
    }
  }

  #method(channel: number, buf: Buffer, start: number, end: number, out: Inbound[]): void {
    const pending = this.#contentActive === 0 ? undefined : this.#pending(channel);
    if (pending !== undefined) {
      throw new UnexpectedFrameError(
        `method frame on channel ${channel} while the content ${pending.phase} ` +
          `of ${pending.method.name} was expected`,
        pending.method,
      );
    }

    const method = decodeMethod(buf, start, end);
    const info = methodInfo(method.name);
    if (info.sender !== 'both' && info.sender !== this.#from) {
      throw new CommandInvalidError(
        `${info.name} is sent by the ${info.sender}, not the ${this.#from}`,
        info,
      );
    }
    if (channel === 0 && info.classId !== CLASS.connection) {
      throw new ChannelError(
        `${info.name} on channel 0, which carries only connection methods`,
        info,
      );
    }
    if (channel !== 0 && info.classId === CLASS.connection) {
      throw new CommandInvalidError(
        `${info.name} on channel ${channel}; connection methods use channel 0`,
        info,
      );
    }
    if (info.content) this.#startContent(channel, info);

    if (this.#emits(channel, info)) {
      out.push({ type: 'method', channel, method });
    }
    if (info.name === 'channel.close-ok') this.#closingChannels.delete(channel);
  }

  #header(channel: number, buf: Buffer, start: number, end: number, out: Inbound[]): void {
    const pending = this.#pending(channel);
    if (pending === undefined || pending.phase !== 'header') {
      throw new UnexpectedFrameError(
        pending === undefined
          ? `content header frame on channel ${channel} with no method before it`
          : `content header frame on channel ${channel} while a body was expected`,
        pending?.method,
      );
    }
    const { method } = pending;
    // A payload too short for a class id is decodeContentHeader's to refuse.
    const classId = end - start >= 2 ? buf.readUInt16BE(start) : undefined;
    if (classId !== undefined && classId !== method.classId) {
      throw new UnexpectedFrameError(
        `content header for class ${classId} on channel ${channel}; ` +
          `${method.name} needs class ${method.classId}`,
        method,
      );
    }

    let header: ContentHeader;
    try {
      const options = this.#headerOptions;
      options.classId = method.classId;
      options.methodId = method.methodId;
      header = decodeContentHeader(buf, options, start, end);
    } catch (err) {
      if (!(err instanceof BodyTooLargeError)) throw err;
      // A channel error: skip the body without keeping it.
      pending.phase = 'body';
      pending.remaining = err.bodySize;
      pending.discard = true;
      if (this.#emits(channel)) {
        out.push({ type: 'channel-error', channel, error: err });
      }
      return;
    }

    if (header.bodySize === 0) {
      this.#endContent(pending);
    } else {
      pending.phase = 'body';
      pending.remaining = header.bodySize;
    }
    if (this.#emits(channel)) out.push({ type: 'header', channel, header });
  }

  #body(channel: number, payload: Buffer, out: Inbound[]): void {
    const pending = this.#pending(channel);
    if (pending === undefined || pending.phase !== 'body') {
      throw new UnexpectedFrameError(
        pending === undefined
          ? `content body frame on channel ${channel} with no header before it`
          : `content body frame on channel ${channel} before its header`,
        pending?.method,
      );
    }
    if (payload.length > pending.remaining) {
      throw new FrameError(
        `content body frame of ${payload.length} bytes on channel ` +
          `${channel}; only ${pending.remaining} bytes of the body remain`,
        pending.method,
      );
    }

    pending.remaining -= payload.length;
    const last = pending.remaining === 0;
    if (last) this.#endContent(pending);
    if (!pending.discard && this.#emits(channel)) {
      out.push({ type: 'body', channel, body: payload, last });
    }
  }

  /** The channel's content under way, if any. */
  #pending(channel: number): Content | undefined {
    const content = this.#content.get(channel);
    return content === undefined || content.phase === 'idle' ? undefined : content;
  }

  #startContent(channel: number, method: MethodInfo): void {
    let content = this.#content.get(channel);
    if (content === undefined) {
      content = { method, phase: 'idle', remaining: 0, discard: false };
      this.#content.set(channel, content);
    }
    content.method = method;
    content.phase = 'header';
    content.remaining = 0;
    content.discard = false;
    this.#contentActive++;
  }

  #endContent(content: Content): void {
    content.phase = 'idle';
    this.#contentActive--;
  }

  // Whether a frame reaches the broker, given what we are closing.
  #emits(channel: number, method?: MethodInfo): boolean {
    if (this.#state === 'closing') {
      return (
        channel === 0 &&
        (method?.name === 'connection.close' ||
          method?.name === 'connection.close-ok')
      );
    }
    if (
      this.#closingChannels.size === 0 ||
      !this.#closingChannels.has(channel)
    ) {
      return true;
    }
    return (
      method?.name === 'channel.close' || method?.name === 'channel.close-ok'
    );
  }

  #fatal(out: Inbound[], error: FrameError): false {
    this.#end();
    out.push({ type: 'connection-error', error, fatal: true });
    return false;
  }

  #end(): void {
    this.#state = 'done';
    this.#bytes.clear();
    this.#content.clear();
    this.#contentActive = 0;
  }
}

const NO_BYTES = Buffer.alloc(0);

/** buf[start, end) as a Buffer: itself when that is all of it. */
function viewOf(buf: Buffer, start: number, end: number): Buffer {
  if (start === end) return NO_BYTES;
  return start === 0 && end === buf.length ? buf : buf.subarray(start, end);
}
