// Which permission each HTTP route needs, in one table, so that no route
// can be added without a decision: registerAuth (auth-hook.ts) refuses to
// register a route missing here, and test/http/auth-routes.test.ts walks
// every route of a running server.
//
//   public  no credentials needed (/healthz, /metrics unless protected)
//   login   any valid user or token
//   see     any permission at all on the queue in the path
//   admin   an administrator (users, tokens, the dashboard)
//   publish / consume / manage   that permission on the queue in the
//           path (`:name`), and publish on the queue a body field names

import type { Action } from '../auth/permissions.js';

export type RouteRule =
  | { need: 'public' | 'login' | 'admin' | 'see' }
  | { need: Action; bodyQueue?: { field: string; action: Action } };

const RULES: Record<string, RouteRule> = {
  'GET /healthz': { need: 'public' },
  'GET /metrics': { need: 'public' },
  'GET /openapi.json': { need: 'login' },

  // Listing answers only the queues the caller may do something with.
  'GET /queues': { need: 'login' },
  'PUT /queues/:name': { need: 'manage' },
  // Seeing one queue: any permission on it.
  'GET /queues/:name': { need: 'see' },
  'DELETE /queues/:name': { need: 'manage' },
  'POST /queues/:name/purge': { need: 'manage' },
  // Without `to`, messages go back to the queues they died in; the route
  // checks publish on each of those before it moves anything.
  'POST /queues/:name/redrive': {
    need: 'manage',
    bodyQueue: { field: 'to', action: 'publish' },
  },

  'POST /queues/:name/messages': { need: 'publish' },
  'POST /queues/:name/messages/batch': { need: 'publish' },
  'GET /queues/:name/messages': { need: 'consume' },
  'POST /queues/:name/receive': { need: 'consume' },
  'POST /queues/:name/ack': { need: 'consume' },
  'POST /queues/:name/nack': { need: 'consume' },
  'POST /queues/:name/extend': { need: 'consume' },
  'POST /queues/:name/release': { need: 'consume' },

  'GET /admin/users': { need: 'admin' },
  'PUT /admin/users/:user': { need: 'admin' },
  'DELETE /admin/users/:user': { need: 'admin' },
  'PUT /admin/users/:user/password': { need: 'admin' },
  'PUT /admin/users/:user/permissions': { need: 'admin' },
  'GET /admin/tokens': { need: 'admin' },
  'PUT /admin/tokens/:token': { need: 'admin' },
  'DELETE /admin/tokens/:token': { need: 'admin' },
  'GET /admin/whoami': { need: 'login' },
  'POST /admin/scrub': { need: 'admin' },

  // Monitoring (src/observe): the alerts any logged-in service may read;
  // the dashboard's live feed, like the dashboard, is an administrator's.
  'GET /alerts': { need: 'login' },
  'GET /events': { need: 'admin' },
};

/** Routes under these prefixes need an administrator (issue #7's dashboard). */
const ADMIN_PREFIXES = ['/dashboard'];

/**
 * The rule for a route as registered (`url` is fastify's pattern, e.g.
 * `/queues/:name`); undefined when the route has none. HEAD follows GET.
 */
export function ruleFor(method: string, url: string): RouteRule | undefined {
  const verb = method === 'HEAD' ? 'GET' : method;
  const rule = RULES[`${verb} ${url}`];
  if (rule !== undefined) return rule;
  if (ADMIN_PREFIXES.some((prefix) => url === prefix || url.startsWith(`${prefix}/`))) {
    return { need: 'admin' };
  }
  return undefined;
}

/** Every route the table names, for the test that walks the server. */
export function tabledRoutes(): string[] {
  return Object.keys(RULES);
}
