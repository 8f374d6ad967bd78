// Reproducible randomness for the demo: every draw is a hash of the run's
// seed and what it is about (a buyer, a ticket id and an attempt), not a
// step of one shared generator, so a draw does not depend on the order in
// which concurrent consumers happen to ask.

/** A number in [0, 1) fixed by the seed and the parts. */
export function chance(seed: number, ...parts: number[]): number {
  let h = mix(seed >>> 0);
  for (const part of parts) h = mix(h ^ (part >>> 0));
  return h / 2 ** 32;
}

/** One item of `list`, fixed by the seed and the parts. */
export function pick<T>(list: readonly T[], seed: number, ...parts: number[]): T {
  return list[Math.floor(chance(seed, ...parts) * list.length)];
}

/** A whole number from `min` to `max`, fixed by the seed and the parts. */
export function between(
  min: number,
  max: number,
  seed: number,
  ...parts: number[]
): number {
  return min + Math.floor(chance(seed, ...parts) * (max - min + 1));
}

/** A 32-bit FNV-1a hash, to turn a ticket id into a draw's part. */
export function hashText(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  }
  return h >>> 0;
}

/** A 32-bit finaliser: every input bit moves about half the output bits. */
function mix(value: number): number {
  let h = value + 0x9e3779b9;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
