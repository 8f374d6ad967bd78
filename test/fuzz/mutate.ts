// A small mutation engine for the fuzzers: byte and bit flips, "interesting"
// values written over length fields, chunks inserted, removed, repeated and
// spliced in from other inputs, and truncation. Seeded, so a finding can be
// replayed from its seed.

/** A seeded PRNG (mulberry32): the same seed gives the same inputs. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(below: number): number {
    return Math.floor(this.next() * below);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

const INTERESTING_8 = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xce, 0xc0, 0xed, 0xf4, 0x41, 0x22, 0x5c];
const INTERESTING_32 = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];
const TOKENS = [
  '"', '\\', '{', '}', '[', ']', ':', ',', 'null', 'NaN', 'Infinity', '-Infinity', '1e309',
  '-0', '9007199254740993', '"__proto__"', '"constructor"', '\\ud800', '\u0000', '\uffff',
  '[[[[[[[[[[', '{"a":{"a":{"a":', '"priority":', '"headers":{', '"body":', '"bodyBase64":',
];

export function mutate(input: Buffer, rng: Rng, others: readonly Buffer[], maxLength: number): Buffer {
  let out: Buffer = Buffer.from(input);
  const rounds = 1 + rng.int(4);
  for (let i = 0; i < rounds; i++) out = mutateOnce(out, rng, others);
  return out.length > maxLength ? out.subarray(0, maxLength) : out;
}

function mutateOnce(input: Buffer, rng: Rng, others: readonly Buffer[]): Buffer {
  const at = input.length === 0 ? 0 : rng.int(input.length);
  switch (rng.int(10)) {
    case 0: {
      if (input.length === 0) return Buffer.from([rng.int(256)]);
      const out = Buffer.from(input);
      out[at] ^= 1 << rng.int(8);
      return out;
    }
    case 1: {
      if (input.length === 0) return input;
      const out = Buffer.from(input);
      out[at] = rng.pick(INTERESTING_8);
      return out;
    }
    case 2: {
      // A 32-bit length field, big- or little-endian, with an edge value.
      if (input.length < 4) return input;
      const out = Buffer.from(input);
      const where = rng.int(input.length - 3);
      const value = rng.pick(INTERESTING_32);
      if (rng.int(2) === 0) out.writeUInt32BE(value, where);
      else out.writeUInt32LE(value, where);
      return out;
    }
    case 3:
      return input.subarray(0, at);
    case 4: {
      const end = Math.min(input.length, at + 1 + rng.int(16));
      return Buffer.concat([input.subarray(0, at), input.subarray(end)]);
    }
    case 5: {
      const end = Math.min(input.length, at + 1 + rng.int(64));
      const chunk = input.subarray(at, end);
      const times = 1 + rng.int(rng.int(2) === 0 ? 4 : 200);
      return Buffer.concat([input.subarray(0, end), ...Array(times).fill(chunk), input.subarray(end)]);
    }
    case 6: {
      const random = Buffer.alloc(1 + rng.int(16));
      for (let i = 0; i < random.length; i++) random[i] = rng.int(256);
      return Buffer.concat([input.subarray(0, at), random, input.subarray(at)]);
    }
    case 7: {
      const token = Buffer.from(rng.pick(TOKENS));
      return Buffer.concat([input.subarray(0, at), token, input.subarray(at)]);
    }
    case 8: {
      if (others.length === 0) return input;
      const other = rng.pick(others);
      const from = other.length === 0 ? 0 : rng.int(other.length);
      return Buffer.concat([input.subarray(0, at), other.subarray(from)]);
    }
    default: {
      // Invalid UTF-8: a lone continuation, an overlong form, a surrogate.
      const bad = rng.pick([[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xff]]);
      return Buffer.concat([input.subarray(0, at), Buffer.from(bad), input.subarray(at)]);
    }
  }
}
