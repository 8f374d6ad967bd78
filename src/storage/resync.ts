// Finding the next whole frame after a damaged one, so that recovery can
// replay the records behind a corrupt stretch instead of losing the rest
// of the segment. Frames carry no sync marker (see codec.ts), so the only
// way to find one is to try every byte offset.
//
//   ... | frame | ################ | frame | frame | ...
//               ^ bad            ^   ^ first offset where a frame fits,
//                 try +1, +2, ...      its checksum matches and its
//                                      payload decodes
//
// A false find needs a CRC-32C match on top of an exact field layout,
// about one chance in 2^32 per candidate that passes the layout check.

import { crc32c } from './crc32c.js';
import { FRAME_HEADER_BYTES, MAX_RECORD_BYTES } from './codec.js';
import { type FitWork, decodePayload, payloadFits } from './codec-decode.js';

export type ResyncResult =
  | { kind: 'found'; offset: number }
  /** No whole frame starts anywhere from `from` to the end. */
  | { kind: 'none' }
  /** The work budget ran out; frames may still lie further on. */
  | { kind: 'gave-up' };

// Cost. Every offset gets O(1) checks: the length is bounded by the bytes
// left and MAX_RECORD_BYTES, then payloadFits follows the length prefixes.
// Only a candidate whose fields add up exactly is hashed. In real data
// (records, text, zeroed blocks, random bodies) such candidates are rare,
// but message bodies are chosen by clients, and a body packed with
// well-formed fake frames of great length would make every offset cost a
// hash of up to 64 MiB: quadratic. So hashing and header walking share a
// budget of WORK_PER_BYTE units for every byte of the buffer, plus enough
// to check two frames of the largest size. Spent, the scan gives up and
// the caller treats the rest as damaged. A 64 MiB segment then costs at
// most about 0.6 GB of CRC-32C (well under a second with the native
// binding) on top of the byte-by-byte pass.
const WORK_PER_BYTE = 8;
// A header entry walked counts as this many hashed bytes: at least two
// u32 lengths of the buffer are behind each.
const WORK_PER_HEADER = 8;

/** The scan state of one damaged buffer; its budget spans every call. */
export class Resync {
  readonly #buf: Buffer;
  readonly #budget: number;
  readonly #work: FitWork = { steps: 0 };
  #hashed = 0;

  constructor(buf: Buffer) {
    this.#buf = buf;
    this.#budget = WORK_PER_BYTE * buf.length + 2 * MAX_RECORD_BYTES;
  }

  /** The first offset at or after `from` where a whole frame decodes. */
  next(from: number): ResyncResult {
    const buf = this.#buf;
    const last = buf.length - FRAME_HEADER_BYTES;
    for (let at = from; at < last; at++) {
      const length = buf.readUInt32LE(at);
      if (length === 0 || length > MAX_RECORD_BYTES) continue;
      const start = at + FRAME_HEADER_BYTES;
      if (length > buf.length - start) continue;

      const payload = buf.subarray(start, start + length);
      const fits = payloadFits(payload, this.#work);
      if (fits) this.#hashed += length;
      if (this.#spent() > this.#budget) return { kind: 'gave-up' };
      if (!fits || crc32c(payload) !== buf.readUInt32LE(at + 4)) continue;
      // Catches what the layout check does not read: null markers, the
      // JSON of queue settings.
      if (!decodePayload(payload, false).ok) continue;
      return { kind: 'found', offset: at };
    }
    return { kind: 'none' };
  }

  #spent(): number {
    return this.#hashed + WORK_PER_HEADER * this.#work.steps;
  }
}
