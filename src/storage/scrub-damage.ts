// Damage a scrub found in a sealed segment (scrub.ts), as the store
// accounts for it: each stretch counted once however often it is
// scrubbed (replay's own finds included), logged where it lies, and the
// live messages it hit reported by queue and handed to their owner. The
// file is left as it is, as replay leaves a damaged older segment; it
// goes once none of its messages is live.

import type { Ledger, SegmentState } from './ledger.js';
import type { DamagedMessage, StoreLogger } from './log-store-types.js';
import type { RegionStart } from './recovery.js';
import type { ScrubTarget } from './scrub.js';
import type { Damage } from './segment-file.js';

export interface ScrubDamageOptions {
  logger: StoreLogger;
  ledger: Ledger;
  /** The store's segments: shared, not copied. */
  segments: readonly SegmentState[];
  /** Stretches replay found already, so that a scrub does not count them again. */
  known: readonly RegionStart[];
  onDamagedMessages: ((messages: DamagedMessage[]) => void) | undefined;
}

export class ScrubDamage {
  /** `<segment id>:<offset>` of every damaged stretch counted so far. */
  readonly #known = new Set<string>();
  /** Stretches scrubs found (not replay). */
  corruptRegions = 0;
  /** Live messages those stretches hit. */
  damagedMessages = 0;

  constructor(private readonly options: ScrubDamageOptions) {
    for (const { segmentId, offset } of options.known) this.#known.add(`${segmentId}:${offset}`);
  }

  /** Accounts for what a scrub of `target` found; returns the stretches new to the count. */
  found(target: ScrubTarget, found: Damage[]): number {
    const { logger, ledger, segments } = this.options;
    // Deleted while it was read: none of its messages was live any more.
    if (!segments.some((segment) => segment.id === target.id)) return 0;
    const damage = found.filter((stretch) => {
      const key = `${target.id}:${stretch.offset}`;
      if (this.#known.has(key)) return false;
      this.#known.add(key);
      return true;
    });
    if (damage.length === 0) return 0;
    this.corruptRegions += damage.length;
    for (const stretch of damage) {
      logger.error(
        {
          file: target.path,
          offset: stretch.offset,
          droppedBytes: stretch.bytes,
          reason: stretch.reason,
        },
        'scrub found a corrupt region of segment',
      );
    }

    const damaged = ledger.liveIn(target.id, damage);
    if (damaged.length > 0) this.#report(target, damaged);
    return damage.length;
  }

  #report(target: ScrubTarget, damaged: DamagedMessage[]): void {
    this.damagedMessages += damaged.length;
    const byQueue = new Map<string, number[]>();
    for (const { seq, queue } of damaged) {
      const seqs = byQueue.get(queue) ?? [];
      seqs.push(seq);
      byQueue.set(queue, seqs);
    }
    // Whether each is lost or still held in memory is the broker's to
    // say (onDamagedMessages), so this names them without calling them lost.
    for (const [queue, seqs] of byQueue) {
      this.options.logger.error(
        { file: target.path, queue, messages: seqs.length, seqs: seqs.slice(0, 20) },
        'live messages hit by damage in the log',
      );
    }
    this.options.onDamagedMessages?.(damaged);
  }
}
