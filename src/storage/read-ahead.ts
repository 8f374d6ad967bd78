// Frames read from the segment files before a page-in asks for them
// (frame-reader.ts), found by segment and offset. A frame is taken out
// when a read asks for it; one never asked for (its message purged, say)
// waits until newer frames need its room. In memory at most `limit`
// bytes of read buffers, gaps between frames included, outside the
// queues' hot-body budgets (engine/cold-tier.ts).

/** A frame read ahead, or being read (`frame` null until it lands). */
export interface AheadFrame {
  segment: number;
  offset: number;
  frameBytes: number;
  /** Read-buffer bytes it accounts for: the frame and the gap before it. */
  bytes: number;
  frame: Buffer | null;
  /** Whether `frame` is a buffer of its own (frame-reader.ts). */
  own: boolean;
}

export class FramesAhead {
  readonly #bySegment = new Map<number, Map<number, AheadFrame>>();
  /** Every entry, oldest first: the order they give up their room in. */
  readonly #oldestFirst = new Set<AheadFrame>();
  bytes = 0;

  constructor(readonly limit: number) {}

  /** Whether the frame at `offset` of `segment` is read ahead or being read. */
  has(segment: number, offset: number): boolean {
    return this.#bySegment.get(segment)?.has(offset) ?? false;
  }

  /**
   * An entry for a frame about to be read, room made by dropping the
   * oldest frames that landed; undefined when that is not enough.
   */
  reserve(segment: number, offset: number, frameBytes: number, bytes: number): AheadFrame | undefined {
    if (this.bytes + bytes > this.limit) {
      for (const old of this.#oldestFirst) {
        if (old.frame !== null) this.drop(old);
        if (this.bytes + bytes <= this.limit) break;
      }
      if (this.bytes + bytes > this.limit) return undefined;
    }
    const entry: AheadFrame = { segment, offset, frameBytes, bytes, frame: null, own: false };
    let frames = this.#bySegment.get(segment);
    if (frames === undefined) {
      frames = new Map();
      this.#bySegment.set(segment, frames);
    }
    frames.set(offset, entry);
    this.#oldestFirst.add(entry);
    this.bytes += bytes;
    return entry;
  }

  /** A read landed: `entry` holds `frame` unless it was taken or dropped meanwhile. */
  land(entry: AheadFrame, frame: Buffer, own: boolean): void {
    if (this.#bySegment.get(entry.segment)?.get(entry.offset) !== entry) return;
    entry.frame = frame;
    entry.own = own;
  }

  /**
   * Takes the frame at `offset` of `segment` out: it, if it landed with
   * the length asked for; undefined otherwise (a read still running is
   * forgotten, and its frame dropped when it lands).
   */
  take(segment: number, offset: number, frameBytes: number): AheadFrame | undefined {
    const entry = this.#bySegment.get(segment)?.get(offset);
    if (entry === undefined) return undefined;
    this.drop(entry);
    return entry.frame !== null && entry.frameBytes === frameBytes ? entry : undefined;
  }

  drop(entry: AheadFrame): void {
    const frames = this.#bySegment.get(entry.segment);
    if (frames?.get(entry.offset) !== entry) return;
    frames.delete(entry.offset);
    if (frames.size === 0) this.#bySegment.delete(entry.segment);
    this.#oldestFirst.delete(entry);
    this.bytes -= entry.bytes;
  }

  /** Drops every frame of a segment about to be deleted. */
  forgetSegment(segment: number): void {
    for (const entry of [...(this.#bySegment.get(segment)?.values() ?? [])]) this.drop(entry);
  }
}
