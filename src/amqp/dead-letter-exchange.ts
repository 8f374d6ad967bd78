// Dead-lettering as RabbitMQ does it: a queue with x-dead-letter-exchange
// publishes each dying message to that exchange, with the queue's
// x-dead-letter-routing-key or else the keys the message came with, and
// the exchange routes it like any publish. No queue bound, or no such
// exchange: the message is dropped. The broker asks this router for
// every queue that dies a message (Broker.routeDeadLetters).

import type { DeadLetterRouter } from '../broker/dead-letter.js';
import {
  EXCHANGE_HEADER, ROUTING_KEY_HEADER, toAmqp, typedHeadersOf, withTypedHeaders,
} from './mapping.js';
import type { QueueFeatures } from './queue-features.js';
import { ccKeysOf } from './sender-selected.js';
import { annotateDeath, deathKeys, isDeadLetterCycle } from './x-death.js';
import type { FieldTable } from './field-table.js';
import type { Binding } from '../routing/types.js';

export interface DeadLetterContext {
  featuresOf(queue: string): QueueFeatures;
  /** The queues a publish to `exchange` reaches; throws if it is missing. */
  route(exchange: string, routingKey: string, headers: FieldTable): readonly string[];
  onDropped(queue: string, why: string): void;
  /** Which queues dead-letter into each queue (deadLetterRoutes), for sourcesOf. */
  routes(): ReadonlyMap<string, readonly string[]>;
}

export function deadLetterExchangeRouter(context: DeadLetterContext): DeadLetterRouter {
  return {
    route(queue, reason, headers) {
      const { deadLetterExchange, deadLetterRoutingKey } = context.featuresOf(queue);
      if (deadLetterExchange === undefined) return undefined;

      const typed = typedHeadersOf(headers);
      // A message published over HTTP was addressed by its queue's name.
      const key = headers[ROUTING_KEY_HEADER] ?? queue;
      // Its CC keys are listed in x-death, as RabbitMQ lists them, but do
      // not route it again (RabbitMQ's do): Usher checks a publisher's
      // right to each queue a publish reaches, and a CC naming a key bound
      // to a queue it may not publish to, on a message bound to die into
      // that exchange, reached that queue (breaker session). BCC's were
      // taken out at the publish.
      const came = {
        exchange: headers[EXCHANGE_HEADER] ?? '',
        routingKeys: [key, ...ccKeysOf(typed)],
      };
      let dead = annotateDeath(headers, came, 'expiration');
      // Sent on by a key of the queue's, it keeps no CC, as in RabbitMQ.
      if (deadLetterRoutingKey !== undefined) dead = withTypedHeaders(dead, typed, 'CC');
      dead[EXCHANGE_HEADER] = deadLetterExchange;
      dead[ROUTING_KEY_HEADER] = deadLetterRoutingKey ?? key;

      const typedHeaders = toAmqp(dead, 0).headers ?? new Map();
      let targets: readonly string[];
      try {
        targets = context.route(deadLetterExchange, deadLetterRoutingKey ?? key, typedHeaders);
      } catch {
        context.onDropped(queue, `dead-letter exchange '${deadLetterExchange}' does not exist`);
        return { queues: [], headers: dead };
      }

      // A message that expired (or hit its limit) its way round back to a
      // queue, with no consumer rejecting it on the way, stops there.
      // Read with the x-death it was published with, as RabbitMQ reads it.
      const entries = reason === 'rejected' ? [] : deathKeys(dead, typed);
      const queues = targets.filter((target) => !isDeadLetterCycle(entries, target));
      if (queues.length < targets.length) context.onDropped(queue, 'dead-letter cycle');
      return { queues, headers: dead };
    },

    sourcesOf(queue) {
      return context.routes().get(queue) ?? NONE;
    },

    decidesFor(queue) {
      return context.featuresOf(queue).deadLetterExchange !== undefined;
    },
  };
}

const NONE: readonly string[] = [];

/**
 * Which queues dead-letter into each queue through their
 * x-dead-letter-exchange, as the bindings stand: with it, Usher's dead-
 * letter tools (the CLI, the dead-letter metric and alert, the dashboard)
 * count such a queue as a dead-letter queue, as they count one named by
 * Usher's own `deadLetter` setting. With x-dead-letter-routing-key the
 * route is that key's; without it, each message's own key decides, which
 * is not known here: then any path of bindings from the exchange into a
 * queue counts (none from the default exchange, which sends a message back
 * by the name it came by). A queue does not count as its own, nor does a
 * queue that dead-letters on itself: in the usual retry loop (work queue,
 * delay queue with a TTL, back) both are live queues, not dead ends.
 *
 * Bindings are indexed by source once, and each exchange's reach found
 * once: recomputed after every change of the topology, this ran for each
 * declare-ok and took a second with 2,000 queues and 500 bindings
 * (breaker session).
 */
export function deadLetterRoutes(
  features: Iterable<[string, QueueFeatures]>,
  bindings: readonly Binding[],
  route: (exchange: string, routingKey: string) => readonly string[],
): Map<string, string[]> {
  const routed: Array<[string, QueueFeatures]> = [];
  for (const entry of features) if (entry[1].deadLetterExchange !== undefined) routed.push(entry);
  const dying = new Set(routed.map(([queue]) => queue));

  const bySource = new Map<string, Binding[]>();
  for (const binding of bindings) {
    const list = bySource.get(binding.source);
    if (list === undefined) bySource.set(binding.source, [binding]);
    else list.push(binding);
  }
  const reach = new Map<string, Set<string>>();

  const into = new Map<string, string[]>();
  for (const [source, { deadLetterExchange, deadLetterRoutingKey }] of routed) {
    const exchange = deadLetterExchange as string;
    let targets: Iterable<string>;
    if (deadLetterRoutingKey !== undefined) {
      targets = routedOrNone(() => route(exchange, deadLetterRoutingKey));
    } else {
      let reached = reach.get(exchange);
      if (reached === undefined) {
        reached = reachable(exchange, bySource);
        reach.set(exchange, reached);
      }
      targets = reached;
    }
    for (const target of targets) {
      if (target === source || dying.has(target)) continue;
      const sources = into.get(target);
      if (sources === undefined) into.set(target, [source]);
      else sources.push(source);
    }
  }
  return into;
}

/** The queues some path of bindings leads to from `exchange`. */
function reachable(exchange: string, bySource: ReadonlyMap<string, Binding[]>): Set<string> {
  const queues = new Set<string>();
  if (exchange === '') return queues;
  const seen = new Set([exchange]);
  const pending = [exchange];
  while (pending.length > 0) {
    for (const binding of bySource.get(pending.pop() as string) ?? []) {
      if (binding.destinationKind === 'queue') {
        queues.add(binding.destination);
      } else if (!seen.has(binding.destination)) {
        seen.add(binding.destination);
        pending.push(binding.destination);
      }
    }
  }
  return queues;
}

/** A missing dead-letter exchange leads nowhere. */
function routedOrNone(route: () => readonly string[]): readonly string[] {
  try {
    return route();
  } catch {
    return NONE;
  }
}
