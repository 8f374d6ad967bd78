// Random (version 4) UUIDs for message ids, made with one string each.
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
  return text.toString('latin1', 0, 36);
}
