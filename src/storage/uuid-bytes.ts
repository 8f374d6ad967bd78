// Lower-case 8-4-4-4-12 hex UUIDs, as randomId() makes them, stored as
// their 16 bytes: in `published` records of type 7 (codec.ts) and in the
// recent ids of a checkpoint (checkpoint-recent.ts). Both run once or
// more for every message published, so the checks go through a table by
// char code: the char-by-char range tests they replace cost ~190 ns an id
// and the regex with a hex write ~460 ns, against ~55 ns here
// (issue #3: the log was CPU-bound).

import { copyMadeId } from '../util/random-id.js';

export const UUID_BYTES = 16;
export const UUID_CHARS = 36;

const DASH = 0x2d;
const NOT_HEX = -1;

/** The value of each lower-case hex digit by char code, NOT_HEX for every other code unit. */
const NIBBLE = new Int8Array(0x10000).fill(NOT_HEX);
for (let digit = 0; digit < 16; digit++) NIBBLE['0123456789abcdef'.charCodeAt(digit)] = digit;

/** Where the 32 hex digits sit among the 36 chars, dashes skipped. */
const DIGIT_PLACES = new Uint8Array([
  0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 19, 20, 21, 22,
  24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35,
]);

/** Whether `id` is a lower-case 8-4-4-4-12 hex UUID. */
export function isUuid(id: string): boolean {
  if (!hasUuidShape(id)) return false;
  let all = 0;
  for (let k = 0; k < DIGIT_PLACES.length; k++) all |= NIBBLE[id.charCodeAt(DIGIT_PLACES[k])];
  return all >= 0;
}

/**
 * Writes the 16 bytes of `id` at `off` and returns the offset after them;
 * or returns -1 if `id` is not a UUID (isUuid). Then it has written nothing
 * unless `id` is 36 chars long, and at most 16 bytes: a caller that writes
 * the id another way over the same place needs no separate check first.
 */
export function putUuid(buf: Uint8Array, off: number, id: string): number {
  if (!hasUuidShape(id)) return -1;
  let all = 0;
  for (let k = 0; k < DIGIT_PLACES.length; k += 2) {
    const high = NIBBLE[id.charCodeAt(DIGIT_PLACES[k])];
    const low = NIBBLE[id.charCodeAt(DIGIT_PLACES[k + 1])];
    all |= high | low;
    buf[off++] = (high << 4) | (low & 0x0f);
  }
  return all < 0 ? -1 : off;
}

function hasUuidShape(id: string): boolean {
  return (
    id.length === UUID_CHARS &&
    id.charCodeAt(8) === DASH &&
    id.charCodeAt(13) === DASH &&
    id.charCodeAt(18) === DASH &&
    id.charCodeAt(23) === DASH
  );
}

const ENTRY_BYTES = 1 + UUID_BYTES;

/**
 * The ids of a run of records, each read once: whether it is a UUID and,
 * if so, its 16 bytes. The log fills one for each batch (batch.ts) and
 * both the frames and, once the batch lands, the ledger's recent ids copy
 * the bytes from it: each had read the 36 chars again (~70 ns an id each
 * on the bench machine; issue #3, the log was CPU-bound).
 */
export class UuidTable {
  /** Entry i: ENTRY_BYTES at ENTRY_BYTES * i, a flag byte (1 for a UUID), then the bytes. */
  #entries: Uint8Array;

  constructor(capacity = 64) {
    this.#entries = new Uint8Array(ENTRY_BYTES * capacity);
  }

  /** Reads `id` into entry `index`, and says whether it is a UUID. */
  put(index: number, id: string): boolean {
    const at = ENTRY_BYTES * index;
    if (at + ENTRY_BYTES > this.#entries.length) this.#grow(at + ENTRY_BYTES);
    // An id the broker made comes with its bytes (util/random-id.ts).
    const uuid = copyMadeId(id, this.#entries, at + 1) || putUuid(this.#entries, at + 1, id) >= 0;
    this.#entries[at] = uuid ? 1 : 0;
    return uuid;
  }

  /** Whether the id put as entry `index` is a UUID. */
  isUuid(index: number): boolean {
    return this.#entries[ENTRY_BYTES * index] === 1;
  }

  /**
   * Copies the 16 bytes of entry `index`, a UUID, to `off`; returns the
   * offset after them. Written out: as a loop it took ~5% of encoding a
   * ticket event into a batch (~25 ns; V8 kept the loop), this ~10 ns.
   */
  copyTo(index: number, buf: Uint8Array, off: number): number {
    const e = this.#entries;
    const from = ENTRY_BYTES * index + 1;
    buf[off] = e[from];
    buf[off + 1] = e[from + 1];
    buf[off + 2] = e[from + 2];
    buf[off + 3] = e[from + 3];
    buf[off + 4] = e[from + 4];
    buf[off + 5] = e[from + 5];
    buf[off + 6] = e[from + 6];
    buf[off + 7] = e[from + 7];
    buf[off + 8] = e[from + 8];
    buf[off + 9] = e[from + 9];
    buf[off + 10] = e[from + 10];
    buf[off + 11] = e[from + 11];
    buf[off + 12] = e[from + 12];
    buf[off + 13] = e[from + 13];
    buf[off + 14] = e[from + 14];
    buf[off + 15] = e[from + 15];
    return off + UUID_BYTES;
  }

  #grow(bytes: number): void {
    const entries = new Uint8Array(Math.max(bytes, 2 * this.#entries.length));
    entries.set(this.#entries);
    this.#entries = entries;
  }
}

const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');
/** Spelled into in place, then made one string (see codec.ts on replay). */
const UUID_TEXT = Buffer.from('00000000-0000-0000-0000-000000000000', 'latin1');

/** The UUID whose 16 bytes are at `off` in `bytes`, spelled lower-case 8-4-4-4-12. */
export function uuidText(bytes: Uint8Array, off: number): string {
  for (let k = 0; k < UUID_BYTES; k++) {
    const byte = bytes[off + k];
    UUID_TEXT[DIGIT_PLACES[2 * k]] = HEX_DIGITS[byte >> 4];
    UUID_TEXT[DIGIT_PLACES[2 * k + 1]] = HEX_DIGITS[byte & 0x0f];
  }
  return UUID_TEXT.toString('latin1', 0, UUID_CHARS);
}
