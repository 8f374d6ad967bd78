// What waiting messages kept in memory hold, across all of a broker's
// queues, so that durable queues past their own window (cold-tier.ts)
// share one budget rather than each sending the rest of its backlog cold.
//
// A budget per queue alone either bounds memory only per queue (ten
// thousand queues of 4096 messages each) or keeps one busy queue's small
// messages on disk while the broker has memory to spare: with 4096, a
// backlog of 50,000 16-byte messages was read back 46,000 times, half of
// what consuming them cost (bench/amqp-compare.ts, issue #4). RabbitMQ
// keeps small messages in memory up to a broker-wide memory mark too.

/**
 * What a waiting message in memory holds besides its body, estimated:
 * its object, slots, id and headers. Measured about 620 bytes for an
 * AMQP publish (three headers) and about 450 for one with none.
 */
export const HOT_MESSAGE_BYTES = 640;

/**
 * The broker's default budget for waiting messages in memory, all queues
 * together: past its own window (HOT_READY_LIMIT) a queue keeps new ones
 * in memory only while the budget is not spent.
 */
export const HOT_MEMORY_BYTES = 64 * 1024 * 1024;

/** What a waiting message in memory is charged. */
export function hotCharge(bodyBytes: number): number {
  return HOT_MESSAGE_BYTES + bodyBytes;
}

export class HotMemory {
  /** Charged by every queue's waiting messages in memory, whatever kind of queue. */
  used = 0;

  /** `limit`: the budget; 0 lets no queue hold more than its own window. */
  constructor(readonly limit: number) {}

  /** Whether queues past their own window must keep new messages on disk. */
  get spent(): boolean {
    return this.used >= this.limit;
  }
}
