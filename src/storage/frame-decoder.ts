// Incremental frame decoder: bytes go in as they arrive (file chunks during
// recovery, single bytes in tests), whole records come out. See codec.ts
// for the frame layout.

import { crc32c } from './crc32c.js';
import { FRAME_HEADER_BYTES, MAX_RECORD_BYTES } from './codec.js';
import { decodePayload } from './codec-decode.js';
import type { LogRecord } from './records.js';

export type FrameResult =
  | { kind: 'record'; record: LogRecord; frameBytes: number }
  | { kind: 'need-more' }
  | { kind: 'corrupt'; reason: string };

export interface FrameDecoderOptions {
  /**
   * Copy each `published` body into a buffer of its own instead of
   * returning a view into the pushed chunk. Recovery sets this: a view
   * would keep a whole read chunk alive for as long as the message lives.
   */
  copyBodies: boolean;
}

/**
 * Pulls frames out of a byte stream. A payload that lies inside one pushed
 * chunk is decoded in place; one split across chunks is first copied into
 * a buffer of its own. Once a frame is found corrupt, the decoder stays
 * corrupt: nothing after a bad frame can be trusted.
 */
export class FrameDecoder {
  readonly #copyBodies: boolean;
  #chunks: Buffer[] = [];
  /** Offset of the first unread byte in #chunks[0]. */
  #head = 0;
  #buffered = 0;
  #consumed = 0;
  #corrupt: string | undefined;

  constructor(options: FrameDecoderOptions) {
    this.#copyBodies = options.copyBodies;
  }

  /** Bytes of whole frames returned so far: the offset of the next frame. */
  get consumed(): number {
    return this.#consumed;
  }

  /** Bytes pushed but not yet returned as part of a frame. */
  get buffered(): number {
    return this.#buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  next(): FrameResult {
    if (this.#corrupt !== undefined) {
      return { kind: 'corrupt', reason: this.#corrupt };
    }
    if (this.#buffered < FRAME_HEADER_BYTES) return { kind: 'need-more' };

    // Bound the length before waiting for or allocating the payload.
    const length = this.#peekU32(0);
    if (length === 0) return this.#fail('frame has an empty payload');
    if (length > MAX_RECORD_BYTES) {
      return this.#fail(
        `frame length ${length} exceeds the limit of ${MAX_RECORD_BYTES}`,
      );
    }
    if (this.#buffered < FRAME_HEADER_BYTES + length) {
      return { kind: 'need-more' };
    }

    const checksum = this.#peekU32(4);
    this.#skip(FRAME_HEADER_BYTES);
    const payload = this.#take(length);
    if (crc32c(payload) !== checksum) {
      return this.#fail('frame checksum mismatch');
    }

    const decoded = decodePayload(payload, this.#copyBodies);
    if (!decoded.ok) return this.#fail(decoded.reason);

    const frameBytes = FRAME_HEADER_BYTES + length;
    this.#consumed += frameBytes;
    return { kind: 'record', record: decoded.record, frameBytes };
  }

  #fail(reason: string): FrameResult {
    this.#corrupt = reason;
    return { kind: 'corrupt', reason };
  }

  // Reads a u32le `at` bytes past the unread start, across chunk borders.
  #peekU32(at: number): number {
    const first = this.#chunks[0];
    const start = this.#head + at;
    if (start + 4 <= first.length) return first.readUInt32LE(start);

    let value = 0;
    for (let i = 0; i < 4; i++) {
      value += this.#peekByte(at + i) * 2 ** (8 * i);
    }
    return value;
  }

  #peekByte(at: number): number {
    let offset = this.#head + at;
    for (const chunk of this.#chunks) {
      if (offset < chunk.length) return chunk[offset];
      offset -= chunk.length;
    }
    throw new RangeError(`peek past buffered bytes at ${at}`);
  }

  #take(length: number): Buffer {
    const first = this.#chunks[0];
    if (this.#head + length <= first.length) {
      const view = first.subarray(this.#head, this.#head + length);
      this.#skip(length);
      return view;
    }

    const copy = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.#chunks[0];
      const n = Math.min(length - filled, chunk.length - this.#head);
      chunk.copy(copy, filled, this.#head, this.#head + n);
      filled += n;
      this.#skip(n);
    }
    return copy;
  }

  #skip(length: number): void {
    this.#buffered -= length;
    this.#head += length;
    while (this.#chunks.length > 0 && this.#head >= this.#chunks[0].length) {
      this.#head -= this.#chunks[0].length;
      this.#chunks.shift();
    }
  }
}
