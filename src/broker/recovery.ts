// Rebuilding the broker's state after a restart. The log store does the
// replay: its ledger keeps, for every live message, what the queues need
// without the body (queue, priority, body size, whether it was published
// delayed, what `retried` and `moved` records changed since), plus the
// recent ids of each queue. A checkpoint holds the same (issue #3), so
// whether the store read the whole log or a checkpoint and the log after
// it, the broker rebuilds from the same place. Messages come back ready or
// delayed; leases are not logged, so whatever was in flight is delivered
// again (at-least-once).

import { DEDUP_MAX_IDS } from '../engine/dedup.js';
import { DEFAULT_SETTINGS } from '../engine/types.js';
import type { RecentId, RecentIdLimits } from '../storage/ledger.js';
import type { LogStore } from '../storage/log-store.js';
import type { LogRecord, PublishedRecord } from '../storage/records.js';

/** A live message as the log last described it. */
export type ReplayedMessage = Omit<PublishedRecord, 'type'>;

/** Recent ids the log store keeps a queue, as the engine does (dedup.ts). */
export const RECENT_ID_LIMITS: RecentIdLimits = {
  maxIds: DEDUP_MAX_IDS,
  defaultWindowMs: DEFAULT_SETTINGS.dedupWindowMs,
};

/** What a restart counted, for the `recovered` log line. */
export class ReplayState {
  /** Records replayed (after the checkpoint, if the store used one). */
  records = 0;
  /** Live messages put back in their queues. */
  messages = 0;

  /** Counts a replayed record; the store's ledger keeps what it says. */
  apply(_record: LogRecord): void {
    this.records++;
  }
}

/**
 * The ids to remember for deduplication across the restart: those the
 * store kept that are still inside their queue's dedup window at `now`.
 * At most the queue's dedupMaxIds (DEDUP_MAX_IDS by default,
 * engine/dedup.ts): a log written before segment format 3 does not tell
 * a producer's id from a generated one (storage/records.ts, madeId), and
 * ten million remembered UUIDs would cost more than the backlog.
 */
export function recentIdsToKeep(store: LogStore, now: number): RecentId[] {
  return store.recentIds().filter(({ queue, publishedAt }) => {
    const window = store.queues.get(queue)?.dedupWindowMs;
    const windowMs = typeof window === 'number' ? window : DEFAULT_SETTINGS.dedupWindowMs;
    return publishedAt > now - windowMs;
  });
}
