// A column of message seqs for the typed-array tables (seq-table.ts,
// engine/cold-backlog.ts): 4 bytes a seq while every seq in it is a whole
// number below 2^32, 8 (f64) once one is not. Seqs count messages from 1,
// so a broker takes four billion publishes to reach the wide form, and
// a column that does goes on working, only larger. At ten million waiting
// messages the ledger and the cold deques hold a seq each: 4 bytes less
// for both is 80 MB of a 600 MB bound (issue #3).

const U32_MAX = 0xffff_ffff;

export class SeqColumn {
  #narrow: Uint32Array | null;
  #wide: Float64Array | null = null;

  constructor(readonly length: number) {
    this.#narrow = new Uint32Array(length);
  }

  /** Bytes held, for tests of the memory bound. */
  get byteLength(): number {
    return (this.#narrow ?? (this.#wide as Float64Array)).byteLength;
  }

  at(index: number): number {
    const narrow = this.#narrow;
    return narrow !== null ? narrow[index] : (this.#wide as Float64Array)[index];
  }

  set(index: number, seq: number): void {
    const narrow = this.#narrow;
    if (narrow !== null) {
      if (fitsNarrow(seq)) {
        narrow[index] = seq;
        return;
      }
      this.#widen();
    }
    (this.#wide as Float64Array)[index] = seq;
  }

  /** As TypedArray.copyWithin, inside this column. */
  copyWithin(target: number, start: number, end: number): void {
    (this.#narrow ?? (this.#wide as Float64Array)).copyWithin(target, start, end);
  }

  /** Copies `source` entries [start, end) to this column from `target` on. */
  copyFrom(source: SeqColumn, start: number, end: number, target = 0): void {
    const from = source.#narrow ?? (source.#wide as Float64Array);
    if (this.#narrow !== null && source.#narrow === null) this.#widen();
    (this.#narrow ?? (this.#wide as Float64Array)).set(from.subarray(start, end), target);
  }

  #widen(): void {
    const wide = new Float64Array(this.length);
    wide.set(this.#narrow as Uint32Array);
    this.#wide = wide;
    this.#narrow = null;
  }
}

function fitsNarrow(seq: number): boolean {
  return seq >= 0 && seq <= U32_MAX && Math.floor(seq) === seq;
}
