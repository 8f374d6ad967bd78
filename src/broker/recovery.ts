// Rebuilds the broker's state from the log: the store replays records in
// order and this folds them into the queues and messages that were live
// when the log ended. Messages come back ready or delayed; leases are not
// logged, so whatever was in flight is delivered again (at-least-once).

import type { LogRecord, PublishedRecord } from '../storage/records.js';
import { DEFAULT_SETTINGS } from '../engine/types.js';

/** A live message as the log last described it. */
export type ReplayedMessage = Omit<PublishedRecord, 'type'>;

export interface RecentId {
  queue: string;
  id: string;
  publishedAt: number;
}

export class ReplayState {
  /** Declared queues and their settings as logged. */
  readonly queues = new Map<string, Record<string, unknown>>();
  /** Live messages by seq, in first-publish order. */
  readonly messages = new Map<number, ReplayedMessage>();
  /** Ids published recently enough to matter for deduplication. */
  readonly recentIds: RecentId[] = [];
  records = 0;

  constructor(private readonly now: number) {}

  apply(record: LogRecord): void {
    this.records++;
    switch (record.type) {
      case 'queue-declared':
        this.queues.set(record.name, { ...record.settings });
        return;
      case 'queue-deleted':
        this.queues.delete(record.name);
        return;
      case 'published':
        this.applyPublished(record);
        return;
      case 'settled':
        for (const seq of record.seqs) this.messages.delete(seq);
        return;
      case 'retried': {
        const message = this.messages.get(record.seq);
        if (message === undefined) return;
        message.failures = record.failures;
        message.availableAt = record.availableAt;
        return;
      }
      case 'moved': {
        const message = this.messages.get(record.seq);
        if (message === undefined) return;
        message.queue = record.queue;
        message.headers = record.headers;
        message.failures = record.failures;
        message.availableAt = record.availableAt;
        message.expiresAt = record.expiresAt;
        return;
      }
    }
  }

  private applyPublished(record: PublishedRecord): void {
    const isCopy = this.messages.has(record.seq);
    this.messages.set(record.seq, {
      seq: record.seq,
      queue: record.queue,
      id: record.id,
      priority: record.priority,
      group: record.group,
      headers: record.headers,
      // Copied so that the segment the record was read from can be freed.
      body: Buffer.from(record.body),
      publishedAt: record.publishedAt,
      availableAt: record.availableAt,
      expiresAt: record.expiresAt,
      failures: record.failures,
    });

    const window = this.dedupWindowOf(record.queue);
    if (!isCopy && record.publishedAt > this.now - window) {
      this.recentIds.push({ queue: record.queue, id: record.id, publishedAt: record.publishedAt });
    }
  }

  private dedupWindowOf(queue: string): number {
    const window = this.queues.get(queue)?.dedupWindowMs;
    return typeof window === 'number' ? window : DEFAULT_SETTINGS.dedupWindowMs;
  }
}
