// The bytes a connection will write next, gathered without a Buffer per
// frame. Frames are encoded straight into an arena that every connection
// shares (as node's own Buffer pool is shared); a run of one connection's
// frames (a burst of deliveries, confirms) becomes one slice of it, and
// the socket gets the slices in one writev. Large bodies are not copied
// at all: their frame header goes in the arena, the body itself goes out
// as it is, between two slices.
//
// A slice handed out is never written again: new frames go after it, and
// a full arena is replaced, not reused, so bytes a socket still holds
// stay as they were. An idle connection holds no part of the arena.

const ARENA_BYTES = 64 * 1024;

/** Bodies this large go out as they are rather than copied into frames. */
export const ATTACH_BYTES = 4 * 1024;

/** Where an encoder writes: reserve room, write into `buf` from `at`, commit. */
export interface FrameSink {
  /** Makes room for `bytes` at `sink.buf` from `sink.at`. */
  reserve(bytes: number): void;
  readonly buf: Buffer;
  /** The next free offset in `buf`; set it past what was written. */
  at: number;
  /** Adds `bytes` to the output after what was written, without a copy. */
  attach(bytes: Buffer): void;
}

/** The arena all connections write into, and its first free byte. */
const arena = { buf: Buffer.alloc(0), at: 0 };

export class OutboundBytes implements FrameSink {
  /** This connection's open slice: [sliceStart, sliceEnd) of sliceBuf. */
  private sliceBuf: Buffer | null = null;
  private sliceStart = 0;
  private sliceEnd = 0;
  private pieces: Buffer[] = [];
  /** Bytes in `pieces`; the open slice is counted apart. */
  private piecesBytes = 0;

  get buf(): Buffer {
    return arena.buf;
  }

  get at(): number {
    return arena.at;
  }

  set at(offset: number) {
    arena.at = offset;
    this.sliceEnd = offset;
  }

  get length(): number {
    return this.piecesBytes + this.sliceEnd - this.sliceStart;
  }

  reserve(bytes: number): void {
    if (arena.buf.length - arena.at < bytes) {
      arena.buf = Buffer.allocUnsafeSlow(Math.max(ARENA_BYTES, bytes));
      arena.at = 0;
    }
    // Another connection wrote since, or the arena is new: what follows
    // starts a slice of its own.
    if (this.sliceBuf !== arena.buf || this.sliceEnd !== arena.at) {
      this.seal();
      this.sliceBuf = arena.buf;
      this.sliceStart = this.sliceEnd = arena.at;
    }
  }

  attach(bytes: Buffer): void {
    this.seal();
    this.pieces.push(bytes);
    this.piecesBytes += bytes.length;
  }

  /** A whole frame encoded elsewhere: copied in if small, else attached. */
  add(frame: Buffer): void {
    if (frame.length >= ATTACH_BYTES) {
      this.attach(frame);
      return;
    }
    this.reserve(frame.length);
    this.at = arena.at + frame.copy(arena.buf, arena.at);
  }

  /** Everything written so far, in order; the output is empty after. */
  take(): Buffer[] {
    this.seal();
    this.sliceBuf = null;
    const pieces = this.pieces;
    this.pieces = [];
    this.piecesBytes = 0;
    return pieces;
  }

  /** Ends the open slice: later bytes start a new one. */
  private seal(): void {
    if (this.sliceBuf !== null && this.sliceEnd > this.sliceStart) {
      this.pieces.push(this.sliceBuf.subarray(this.sliceStart, this.sliceEnd));
      this.piecesBytes += this.sliceEnd - this.sliceStart;
    }
    this.sliceStart = this.sliceEnd;
  }
}
