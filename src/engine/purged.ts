// What a purge took out of a queue, kept until its `settled` records are
// durable: should that write fail, the queue takes it all back
// (QueueContents.restorePurged) rather than lose it until a restart
// brings it back from the log (broker/queues.ts). Cold messages are kept
// as rows of a ColdRows table, about 29 bytes each, not as objects: a
// purge may take millions.

import { ColdRows, type ColdRow } from './cold-rows.js';
import type { Message } from './types.js';

export class Purged {
  /** Seqs of every message taken: what the `settled` records name. */
  readonly seqs: number[] = [];
  /** Those that were in memory, as they were. */
  readonly hot: Message[] = [];
  readonly #cold = new ColdRows();
  /** FIFO group keys by group id: a group may be forgotten before a restore. */
  readonly #groups = new Map<number, string>();

  addHot(message: Message): void {
    this.seqs.push(message.seq);
    this.hot.push(message);
  }

  /** A cold message's row; `group` is its FIFO group's key, null in a best-effort queue. */
  addCold(row: ColdRow, group: string | null): void {
    this.seqs.push(row.seq);
    this.#cold.put(row);
    if (group !== null) this.#groups.set(row.group, group);
  }

  /** The cold ones in seq order, each with its FIFO group's key (or null). */
  *cold(): Generator<{ row: ColdRow; group: string | null }> {
    for (const seq of this.#cold.seqs()) {
      const row = this.#cold.get(seq) as ColdRow;
      yield { row, group: this.#groups.get(row.group) ?? null };
    }
  }
}
