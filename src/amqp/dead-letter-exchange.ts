// Dead-lettering as RabbitMQ does it: a queue with x-dead-letter-exchange
// publishes each dying message to that exchange, with the queue's
// x-dead-letter-routing-key or else the keys the message came with, and
// the exchange routes it like any publish. No queue bound, or no such
// exchange: the message is dropped. The broker asks this router for
// every queue that dies a message (Broker.routeDeadLetters).

import type { DeadLetterRouter } from '../broker/dead-letter.js';
import { EXCHANGE_HEADER, ROUTING_KEY_HEADER, toAmqp } from './mapping.js';
import type { QueueFeatures } from './queue-features.js';
import { annotateDeath, deathEntries, isDeadLetterCycle } from './x-death.js';
import type { FieldTable } from './field-table.js';

export interface DeadLetterContext {
  featuresOf(queue: string): QueueFeatures;
  /** The queues a publish to `exchange` reaches; throws if it is missing. */
  route(exchange: string, routingKey: string, headers: FieldTable): readonly string[];
  onDropped(queue: string, why: string): void;
}

export function deadLetterExchangeRouter(context: DeadLetterContext): DeadLetterRouter {
  return {
    route(queue, reason, headers) {
      const { deadLetterExchange, deadLetterRoutingKey } = context.featuresOf(queue);
      if (deadLetterExchange === undefined) return undefined;

      const came = {
        exchange: headers[EXCHANGE_HEADER] ?? '',
        // A message published over HTTP was addressed by its queue's name.
        routingKeys: [headers[ROUTING_KEY_HEADER] ?? queue],
      };
      const dead = annotateDeath(headers, came, 'expiration');
      const keys = deadLetterRoutingKey === undefined ? came.routingKeys : [deadLetterRoutingKey];
      dead[EXCHANGE_HEADER] = deadLetterExchange;
      dead[ROUTING_KEY_HEADER] = keys[0];

      const typedHeaders = toAmqp(dead, 0).headers ?? new Map();
      const targets = new Set<string>();
      try {
        for (const key of keys) {
          for (const target of context.route(deadLetterExchange, key, typedHeaders)) {
            targets.add(target);
          }
        }
      } catch {
        context.onDropped(queue, `dead-letter exchange '${deadLetterExchange}' does not exist`);
        return { queues: [], headers: dead };
      }

      // A message that expired (or hit its limit) its way round back to a
      // queue, with no consumer rejecting it on the way, stops there.
      const entries = reason === 'rejected' ? [] : deathEntries(dead);
      const queues = [...targets].filter((target) => !isDeadLetterCycle(entries, target));
      if (queues.length < targets.size) context.onDropped(queue, 'dead-letter cycle');
      return { queues, headers: dead };
    },
  };
}
