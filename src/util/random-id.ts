// Random (version 4) UUIDs for message ids, made with one string each.
// The log writes a UUID as its 16 bytes (storage/uuid-bytes.ts), so the
// bytes of each id made are kept until read once (copyMadeId).
//
// node's crypto.randomUUID builds its text from many small strings, about
// half a kilobyte of garbage per id; at one id per message that was the
// largest single allocation on the publish path. This writes the 36
// characters into a scratch buffer and makes one string of them. The
// random bytes come from the same CSPRNG, drawn in batches.

import { randomFillSync } from 'node:crypto';

const IDS_PER_BATCH = 256;
const random = Buffer.allocUnsafe(16 * IDS_PER_BATCH);
let used = IDS_PER_BATCH;
const text = Buffer.allocUnsafe(36);
const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** Where each of the 16 bytes goes in xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx. */
const PLACES = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
for (const dash of [8, 13, 18, 23]) text[dash] = 0x2d;

// The ids made and not yet read by copyMadeId, with their bytes, in slots
// by their first three chars. Most are read within the publish that made
// them, a hundred ids or so later, so few (1%) meet another in their slot;
// one that does is let go of, and its reader reads the 32 hex digits back
// (~70 ns, the cost this saves). A slot is emptied when read, so ids are
// not kept alive past their publish.
const MADE_SLOTS = 4096;
const madeIds = new Array<string | undefined>(MADE_SLOTS).fill(undefined);
const madeBytes = new Uint8Array(16 * MADE_SLOTS);

export function randomId(): string {
  if (used === IDS_PER_BATCH) {
    randomFillSync(random);
    used = 0;
  }
  const from = 16 * used++;
  // RFC 9562: version 4 in the high nibble of byte 6, variant 10 in byte 8.
  random[from + 6] = (random[from + 6] & 0x0f) | 0x40;
  random[from + 8] = (random[from + 8] & 0x3f) | 0x80;
  for (let i = 0; i < 16; i++) {
    const byte = random[from + i];
    text[PLACES[i]] = HEX[byte >> 4];
    text[PLACES[i] + 1] = HEX[byte & 0x0f];
  }
  // toString('latin1') rather than Buffer's undeclared latin1Slice, which
  // is a little faster but not part of node's API.
  const id = text.toString('latin1', 0, 36);
  const slot = slotOf(text[0], text[1], text[2]);
  madeIds[slot] = id;
  for (let i = 0; i < 16; i++) madeBytes[16 * slot + i] = random[from + i];
  return id;
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
  for (let i = 0; i < 16; i++) buf[off + i] = madeBytes[16 * slot + i];
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
