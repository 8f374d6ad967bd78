// Random (version 4) UUIDs for message ids. The log writes a UUID as its
// 16 bytes (storage/uuid-bytes.ts), so the bytes of each id made are kept
// until read once (copyMadeId).
//
// node's crypto.randomUUID builds its text from many small strings, about
// half a kilobyte of garbage per id; at one id per message that was the
// largest single allocation on the publish path. Here the random bytes
// come from the same CSPRNG, drawn for RANDOM_IDS ids at once (a call
// costs ~2 µs whatever its size: 35 ns an id at 64, 4 at 1,024), and the
// ids one publish needs (randomIds), up to IDS_PER_DRAW at a time, are
// spelled back to back into one string. Each id is a slice of it, which
// V8 makes a view of its parent (~10 ns, for 13 chars or more) where a
// string of its own, made from a Buffer, crossed into C++ (~65 ns; issue
// #3, the log is CPU-bound).
//
// A view keeps its parent alive: an id kept long after the others of its
// draw (a dead letter, say) holds the draw's text, 36 bytes an id. Hence
// few ids a draw (64 make 2.3 KB), and never the ids of two publishes in
// one draw: a queue whose publishes come between those of busier queues
// would otherwise keep a whole draw for each message waiting in it (~2.7
// KB a message against ~450, test/broker/made-ids-memory.test.ts). A
// publish of one message pays for a string of its own (made and read
// once: ~125 ns an id against ~65 in a publish of 8 or more).

import { randomFillSync } from 'node:crypto';

const RANDOM_IDS = 1024;
const IDS_PER_DRAW = 64;
const ID_CHARS = 36;
// Its own memory (allocUnsafeSlow), so that it starts on a word: an id's
// bytes are kept as four u32s (keep).
const random = Buffer.allocUnsafeSlow(16 * RANDOM_IDS);
const randomWords = new Uint32Array(random.buffer, random.byteOffset, random.length / 4);
/** Where in `random` the bytes of the next id made start. */
let randomAt = random.length;
const text = Buffer.allocUnsafe(ID_CHARS * IDS_PER_DRAW);
const textView = new DataView(text.buffer, text.byteOffset, text.length);
/** The two hex digits of each byte value, as a u16le: one store a byte. */
const HEX_PAIRS = new Uint16Array(256);
for (let byte = 0; byte < 256; byte++) {
  const hex = byte.toString(16).padStart(2, '0');
  HEX_PAIRS[byte] = hex.charCodeAt(0) | (hex.charCodeAt(1) << 8);
}
for (let id = 0; id < IDS_PER_DRAW; id++) {
  for (const dash of [8, 13, 18, 23]) text[ID_CHARS * id + dash] = 0x2d;
}

// The ids made and not yet read by copyMadeId, with their bytes, in slots
// by their first three chars. Most are read within the publish that made
// them, a hundred ids or so later, so few (1%) meet another in their slot;
// one that does is let go of, and its reader reads the 32 hex digits back
// (~70 ns, the cost this saves). A slot is emptied when read, so ids are
// not kept alive past their publish.
const MADE_SLOTS = 4096;
const madeIds = new Array<string | undefined>(MADE_SLOTS).fill(undefined);
const madeWords = new Uint32Array(4 * MADE_SLOTS);
const madeBytes = new Uint8Array(madeWords.buffer);

/** One id, a string of its own (a draw of one). */
export function randomId(): string {
  return randomIds(1)[0];
}

/**
 * `count` ids for one publish. They share strings of up to IDS_PER_DRAW
 * ids with each other only, never with another call's. `forTheLog`
 * false: they will never be written (a memory queue's), so their bytes
 * are not kept for copyMadeId, where they would stay until another id
 * took their slot.
 */
export function randomIds(count: number, forTheLog = true): string[] {
  const ids = new Array<string>(count);
  for (let done = 0; done < count; done += IDS_PER_DRAW) {
    draw(ids, done, Math.min(IDS_PER_DRAW, count - done), forTheLog);
  }
  return ids;
}

// Makes `count` ids into `ids` from `first` on, from one string.
function draw(ids: string[], first: number, count: number, forTheLog: boolean): void {
  if (randomAt + 16 * count > random.length) {
    randomFillSync(random);
    randomAt = 0;
  }
  for (let id = 0; id < count; id++) {
    const from = randomAt + 16 * id;
    // RFC 9562: version 4 in the high nibble of byte 6, variant 10 in byte 8.
    random[from + 6] = (random[from + 6] & 0x0f) | 0x40;
    random[from + 8] = (random[from + 8] & 0x3f) | 0x80;
    spell(from, ID_CHARS * id);
  }
  const drawn = text.toString('latin1', 0, ID_CHARS * count);
  for (let id = 0; id < count; id++) {
    const at = ID_CHARS * id;
    const made = drawn.slice(at, at + ID_CHARS);
    ids[first + id] = forTheLog ? keep(made, randomAt + 16 * id) : made;
  }
  randomAt += 16 * count;
}

// Puts a made id and its bytes (at `from` in `random`) in its slot.
function keep(id: string, from: number): string {
  // The slot of its first three hex digits: the high 12 bits of its bytes.
  const slot = (random[from] << 4) | (random[from + 1] >> 4);
  madeIds[slot] = id;
  // Four words, not 16 bytes: ~6 ns against ~15.
  const word = from >> 2;
  madeWords[4 * slot] = randomWords[word];
  madeWords[4 * slot + 1] = randomWords[word + 1];
  madeWords[4 * slot + 2] = randomWords[word + 2];
  madeWords[4 * slot + 3] = randomWords[word + 3];
  return id;
}

// The 16 bytes at `from` in `random` as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
// at `to` in `text` (the dashes are there already). Written out: the same
// as a loop over the byte places took ~55 ns an id, this ~9.
function spell(from: number, to: number): void {
  const view = textView;
  view.setUint16(to, HEX_PAIRS[random[from]], true);
  view.setUint16(to + 2, HEX_PAIRS[random[from + 1]], true);
  view.setUint16(to + 4, HEX_PAIRS[random[from + 2]], true);
  view.setUint16(to + 6, HEX_PAIRS[random[from + 3]], true);
  view.setUint16(to + 9, HEX_PAIRS[random[from + 4]], true);
  view.setUint16(to + 11, HEX_PAIRS[random[from + 5]], true);
  view.setUint16(to + 14, HEX_PAIRS[random[from + 6]], true);
  view.setUint16(to + 16, HEX_PAIRS[random[from + 7]], true);
  view.setUint16(to + 19, HEX_PAIRS[random[from + 8]], true);
  view.setUint16(to + 21, HEX_PAIRS[random[from + 9]], true);
  view.setUint16(to + 24, HEX_PAIRS[random[from + 10]], true);
  view.setUint16(to + 26, HEX_PAIRS[random[from + 11]], true);
  view.setUint16(to + 28, HEX_PAIRS[random[from + 12]], true);
  view.setUint16(to + 30, HEX_PAIRS[random[from + 13]], true);
  view.setUint16(to + 32, HEX_PAIRS[random[from + 14]], true);
  view.setUint16(to + 34, HEX_PAIRS[random[from + 15]], true);
}

/**
 * `id` as a string of its own, for a message that outlives its publish on
 * its own (a dead letter, a redriven one): a made id is a view of its
 * publish's text, up to 2.3 KB, which it would keep alive. An id of other
 * chars than ASCII (never one made here) is returned as it is.
 */
const ownText = Buffer.allocUnsafe(ID_CHARS);

export function unshared(id: string): string {
  if (id.length !== ID_CHARS) return id;
  for (let i = 0; i < ID_CHARS; i++) if (id.charCodeAt(i) > 0x7f) return id;
  // Not `text`: its dashes are written once, at start.
  return ownText.toString('latin1', 0, ownText.write(id, 0, ID_CHARS, 'latin1'));
}

/**
 * If `id` is one randomId made and nobody read here yet, copies its 16
 * bytes (as storage/uuid-bytes.ts putUuid would write them) to `buf` at
 * `off` and returns true; else false, having written nothing.
 */
export function copyMadeId(id: string, buf: Uint8Array, off: number): boolean {
  if (id.length !== 36) return false;
  const slot = slotOf(id.charCodeAt(0), id.charCodeAt(1), id.charCodeAt(2));
  if (madeIds[slot] !== id) return false;
  madeIds[slot] = undefined;
  // Written out, as in spell(): a loop took ~15-30 ns, this ~10.
  const b = madeBytes;
  const from = 16 * slot;
  buf[off] = b[from];
  buf[off + 1] = b[from + 1];
  buf[off + 2] = b[from + 2];
  buf[off + 3] = b[from + 3];
  buf[off + 4] = b[from + 4];
  buf[off + 5] = b[from + 5];
  buf[off + 6] = b[from + 6];
  buf[off + 7] = b[from + 7];
  buf[off + 8] = b[from + 8];
  buf[off + 9] = b[from + 9];
  buf[off + 10] = b[from + 10];
  buf[off + 11] = b[from + 11];
  buf[off + 12] = b[from + 12];
  buf[off + 13] = b[from + 13];
  buf[off + 14] = b[from + 14];
  buf[off + 15] = b[from + 15];
  return true;
}

// The id's first three hex digits (any other char lands in some slot,
// where no made id will match it).
function slotOf(first: number, second: number, third: number): number {
  return ((hexValue(first) << 8) | (hexValue(second) << 4) | hexValue(third)) & (MADE_SLOTS - 1);
}

// '0'-'9' are 0x30-0x39 and 'a'-'f' 0x61-0x66: the low four bits, plus 9 for a letter.
function hexValue(code: number): number {
  return (code & 15) + 9 * ((code >> 6) & 1);
}
