// The stamp every bench message carries at the start of its body, so the
// consumer side can tell which message it got, when it was meant to be
// sent, and whether it saw it before. Fixed size, binary, big-endian:
//
//   [magic "UBM1" 4][producer u32][seq u32][intended send time f64 ms]
//
// The time is epoch milliseconds with a fraction (performance clock), the
// moment the schedule wanted the message sent, not when it went: latency
// measured from it is corrected for coordinated omission.

export const STAMP_BYTES = 20;

const MAGIC = 0x55424d31; // "UBM1"

/** Epoch milliseconds with sub-millisecond precision. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export function writeStamp(
  body: Buffer,
  offset: number,
  producer: number,
  seq: number,
  intendedMs: number,
): void {
  body.writeUInt32BE(MAGIC, offset);
  body.writeUInt32BE(producer, offset + 4);
  body.writeUInt32BE(seq, offset + 8);
  body.writeDoubleBE(intendedMs, offset + 12);
}

export interface Stamp {
  producer: number;
  seq: number;
  intendedMs: number;
}

/**
 * Reads the stamp at the start of `body` into `into` (reused, so reading
 * allocates nothing); false when the body carries none.
 */
export function readStamp(body: Buffer, into: Stamp): boolean {
  if (body.length < STAMP_BYTES || body.readUInt32BE(0) !== MAGIC) return false;
  into.producer = body.readUInt32BE(4);
  into.seq = body.readUInt32BE(8);
  into.intendedMs = body.readDoubleBE(12);
  return true;
}

/** A body of `size` bytes (at least the stamp) or the given template. */
export function bodyTemplate(size: number, file?: Buffer): Buffer {
  if (file !== undefined) {
    // The stamp goes in front of the file's bytes, which stay whole.
    return Buffer.concat([Buffer.alloc(STAMP_BYTES), file]);
  }
  if (size < STAMP_BYTES) {
    throw new RangeError(`--size must be at least ${STAMP_BYTES} bytes (the stamp)`);
  }
  // Printable filler: brokers that show bodies as text show it cleanly.
  return Buffer.alloc(size, 'x');
}
