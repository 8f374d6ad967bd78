// The AMQP properties a delivered message carries, from its headers
// (mapping.ts, toAmqp), and the bytes of the last ones a channel sent.
//
// A queue's messages mostly come from one publisher with the same
// properties: the same headers, key for key in the same order, and the
// same priority. Mapping them again and encoding them again for every
// delivery was 3-4% of the broker's CPU draining a 464 B backlog
// (bench:amqp --only durable); comparing the headers with the last ones
// costs less. Only first deliveries of messages that never died take the
// cache: the others get extra headers (x-death, x-delivery-count).

import type { ReceivedMessage } from '../broker/types.js';
import { type BasicProperties, type PropertiesInput, encodeProperties } from './content.js';
import type { FieldValue } from './field-table.js';
import { toAmqp, typedHeadersOf } from './mapping.js';
import { deathTable, hasDied } from './x-death.js';

/** The properties of a delivery of `message`, mapped from its headers. */
export function propertiesOf(message: ReceivedMessage): BasicProperties {
  // The common case, a first delivery of a message that never died, needs
  // no extra headers.
  let extra: Map<string, FieldValue> | undefined =
    hasDied(message.headers)
      ? new Map(deathTable(message.headers, typedHeadersOf(message.headers)))
      : undefined;
  // Deliveries that ended without an ack so far, as RabbitMQ's quorum
  // queues count them; absent on a first delivery.
  if (message.attempt > 1) {
    extra ??= new Map<string, FieldValue>();
    extra.set('x-delivery-count', { type: 'l', value: BigInt(message.attempt - 1) });
  }
  return toAmqp(message.headers, message.priority, extra);
}

/** The last properties a channel encoded, and what they were mapped from. */
export class LastProperties {
  /** The headers' names and values in their order; none before the first. */
  #names: string[] = [];
  #values: string[] = [];
  #priority = -1;
  #bytes: Buffer | null = null;

  /**
   * What propertiesOf(message) gives, as bytes when it can be kept;
   * throws as encoding them would (the caller's delivery fails alike).
   */
  of(message: ReceivedMessage): PropertiesInput {
    if (message.attempt > 1 || hasDied(message.headers)) return propertiesOf(message);
    if (this.#bytes !== null && this.#same(message)) return this.#bytes;

    const bytes = encodeProperties(propertiesOf(message));
    this.#names = [];
    this.#values = [];
    for (const name in message.headers) {
      this.#names.push(name);
      this.#values.push(message.headers[name]);
    }
    this.#priority = message.priority;
    this.#bytes = bytes;
    return bytes;
  }

  // Same priority, same header names in the same order, same values.
  #same(message: ReceivedMessage): boolean {
    if (message.priority !== this.#priority) return false;
    const headers = message.headers;
    const names = this.#names;
    let at = 0;
    for (const name in headers) {
      if (at === names.length || names[at] !== name) return false;
      if (this.#values[at] !== headers[name]) return false;
      at++;
    }
    return at === names.length;
  }
}
