// The bytes a connection will write next, gathered without a Buffer per
// frame. Frames are encoded straight into a shared arena; a run of them
// (a burst of deliveries, confirms) becomes one slice of it, and the
// socket gets the slices in one writev. Large bodies are not copied at
// all: their frame header goes in the arena, the body itself goes out as
// it is, between two slices.
//
// A slice handed to the socket is never written again: new frames go
// after it, and a full arena is replaced, not reused, so bytes the socket
// still holds stay as they were.

const ARENA_BYTES = 64 * 1024;

/** Bodies this large go out as they are rather than copied into frames. */
export const ATTACH_BYTES = 4 * 1024;

/** Where an encoder writes: reserve room, write into `buf` from `at`, commit. */
export interface FrameSink {
  /** Makes room for `bytes` at `sink.buf` from `sink.at`. */
  reserve(bytes: number): void;
  readonly buf: Buffer;
  /** The next free offset in `buf`. */
  at: number;
  /** Adds `bytes` to the output after what was written, without a copy. */
  attach(bytes: Buffer): void;
}

export class OutboundBytes implements FrameSink {
  buf: Buffer = Buffer.allocUnsafeSlow(ARENA_BYTES);
  at = 0;
  /** Where the arena's unsent slice begins. */
  private start = 0;
  private pieces: Buffer[] = [];
  /** Bytes in `pieces` and in the open slice. */
  private piecesBytes = 0;

  get length(): number {
    return this.piecesBytes + this.at - this.start;
  }

  reserve(bytes: number): void {
    if (this.buf.length - this.at >= bytes) return;
    this.seal();
    this.buf = Buffer.allocUnsafeSlow(Math.max(ARENA_BYTES, bytes));
    this.at = 0;
    this.start = 0;
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
    this.at += frame.copy(this.buf, this.at);
  }

  /** Everything written so far, in order; the output is empty after. */
  take(): Buffer[] {
    this.seal();
    const pieces = this.pieces;
    this.pieces = [];
    this.piecesBytes = 0;
    return pieces;
  }

  /** Ends the open slice of the arena: later bytes start a new one. */
  private seal(): void {
    if (this.at === this.start) return;
    this.pieces.push(this.buf.subarray(this.start, this.at));
    this.piecesBytes += this.at - this.start;
    this.start = this.at;
  }
}
