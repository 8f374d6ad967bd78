// The log as the cold tier sees it, for engine tests that run a queue with
// a cold tier against one that keeps everything in memory: each seq's
// latest `published` record, as the broker's store keeps it, read back as
// a ready message.

import type { Message } from '../../src/engine/types.js';

export class RecordLog {
  readonly records = new Map<number, Message>();
  #seq = 0;

  /** The next seq, as the store hands them out. */
  next(): number {
    return ++this.#seq;
  }

  write(message: Message): void {
    this.records.set(message.seq, { ...message, slots: undefined, lease: null });
  }

  pageIn = (seqs: number[]): (Message | undefined)[] =>
    seqs.map((seq) => {
      const record = this.records.get(seq);
      return record === undefined ? undefined : { ...record, state: 'ready', lease: null };
    });
}
