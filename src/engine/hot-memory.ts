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
//
// TODO(#4): a publish kept in memory costs the broker about 2 us of CPU
// more than one let go cold (in-process, 16 B, 100k into a fresh broker:
// 4.0-4.6 us against 2.0-2.8), half of it on V8's helper threads: the
// young generation copies the message's half-dozen objects (scavenges of
// 4-12 ms instead of 0.5) and the heap grows. Fewer objects a message
// (its slots inside it, say) would cut that; consuming it then costs
// about 10 us less than reading it back.

import type { Message } from './types.js';

/**
 * What a waiting message in memory holds besides its body and headers,
 * estimated: its object, slots and id. Measured about 620 bytes, headers
 * included, for an AMQP publish (three short headers: charged about 700)
 * and about 450 for one with none.
 */
export const HOT_MESSAGE_BYTES = 512;
/**
 * What a header holds besides the characters of its name and value: its
 * slot in the headers object and the value's string. Without it a
 * dead-lettered message (a dozen death headers) held about 1.3 times its
 * charge (bench/cold-kinds.ts, DLQ at 200k: +87 MB for the 64 MiB).
 */
export const HOT_HEADER_BYTES = 32;

/**
 * The broker's default budget for waiting messages in memory, all queues
 * together: past its own window (HOT_READY_LIMIT) a queue keeps new ones
 * in memory only while the budget is not spent.
 *
 * Measured and not taken (issue #4, 2026-12-06, two interleaved pairs,
 * other work on the machine): with 1 GiB the bench's 50,000 durable
 * 16 KiB messages stayed in memory, as RabbitMQ's classic queues keep
 * theirs, and their consume cost the broker 41-47 µs a message against
 * 50-60 read back from disk. A default that large would break issue
 * #3's bound (a 10M backlog under 600 MB of RSS); BrokerOptions'
 * hotMemoryBytes sets it for a broker made in code.
 */
export const HOT_MEMORY_BYTES = 64 * 1024 * 1024;

/**
 * What a waiting message in memory is charged: its body, its headers by
 * their length (up to 160 KiB a message; a fixed estimate would let a
 * backlog of such messages hold a hundred times the budget), and the rest.
 */
export function hotCharge(message: Pick<Message, 'body' | 'headers'>): number {
  let bytes = HOT_MESSAGE_BYTES + message.body.length;
  const headers = message.headers;
  // for-in, not Object.entries: this runs for every message kept. A
  // value that is not text (the broker checks that none is) counts
  // nothing rather than making the budget NaN, which nothing would reach.
  for (const key in headers) {
    const value: unknown = headers[key];
    bytes += HOT_HEADER_BYTES + key.length + (typeof value === 'string' ? value.length : 0);
  }
  return bytes;
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
