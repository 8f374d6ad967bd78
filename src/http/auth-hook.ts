// HTTP authentication and authorization as fastify hooks, so that every
// route is covered by default: a route is public only when the table in
// route-permissions.ts says so, and a route missing from the table cannot
// even be registered. Credentials come as HTTP Basic (user:password) or a
// bearer token (`usher token create`). While the guest is on, a request
// from loopback with no credentials at all is the guest, so local use and
// curl need nothing; `usher serve --no-guest` turns that off.
//
//   no or wrong credentials      401 UNAUTHENTICATED + WWW-Authenticate
//   too many failures            429 LOGIN_LOCKED + Retry-After
//   valid, lacking permission    403 ACCESS_REFUSED

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { isLoopback, type Authenticator, type Credentials } from '../auth/authenticator.js';
import { may, maySee, type Action, type Principal } from '../auth/permissions.js';
import { AccessRefusedError, LoginLockedError, UnauthenticatedError } from '../errors.js';
import { ruleFor, type RouteRule } from './route-permissions.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who sent the request; null only on public routes. */
    principal: Principal | null;
  }
}

export interface HttpAuthOptions {
  authenticator: Authenticator;
  /** Require credentials on /healthz and /metrics too; default false. */
  protectSystemRoutes?: boolean;
  /** Told of every 403, for usher_unauthorized_total. */
  onRefused?: () => void;
}

/** Every route each app registered, as `METHOD /url`; for tests. */
const checkedRoutes = new WeakMap<FastifyInstance, string[]>();

export function routesCheckedBy(app: FastifyInstance): readonly string[] {
  return checkedRoutes.get(app) ?? [];
}

const CHALLENGES = ['Basic realm="usher", charset="UTF-8"', 'Bearer realm="usher"'];

/** Must run before any route is added: it checks each one as it comes. */
export function registerAuth(app: FastifyInstance, options: HttpAuthOptions): void {
  const { authenticator } = options;
  app.decorateRequest('principal', null);

  const checked: string[] = [];
  checkedRoutes.set(app, checked);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      checked.push(`${method} ${route.url}`);
      if (ruleFor(method, route.url) === undefined) {
        throw new Error(
          `HTTP route ${method} ${route.url} has no permission rule; ` +
            'add one to src/http/route-permissions.ts',
        );
      }
    }
  });

  // Every refusal below is an AccessRefusedError: counted here, once.
  app.addHook('onError', async (_request, _reply, error) => {
    if (error instanceof AccessRefusedError) options.onRefused?.();
  });

  app.addHook('onRequest', async (request, reply) => {
    const rule = ruleOf(request, options.protectSystemRoutes ?? false);
    if (rule.need === 'public') return;

    const principal = await authenticate(authenticator, request, reply);
    request.principal = principal;
    if (rule.need === 'login') return;
    if (rule.need === 'admin') {
      if (!principal.admin) {
        throw new AccessRefusedError(`${describe(principal)} is not an administrator`);
      }
      return;
    }
    const queue = queueInPath(request);
    if (rule.need === 'see') {
      if (!maySee(principal, queue)) throw refusal(principal, 'see', queue);
      return;
    }
    if (!may(principal, rule.need, queue)) throw refusal(principal, rule.need, queue);
  });

  // A queue named in the body (redrive's `to`) is known only once parsed.
  app.addHook('preHandler', async (request) => {
    const url = request.routeOptions.url;
    const rule = url === undefined ? undefined : ruleFor(request.method, url);
    if (rule === undefined || !('bodyQueue' in rule) || rule.bodyQueue === undefined) return;
    const { field, action } = rule.bodyQueue;
    const body = request.body as Record<string, unknown> | undefined;
    const queue = body?.[field];
    if (typeof queue !== 'string' || request.principal === null) return;
    if (!may(request.principal, action, queue)) {
      throw refusal(request.principal, action, queue, field);
    }
  });
}

function ruleOf(request: FastifyRequest, protectSystem: boolean): RouteRule {
  const url = request.routeOptions.url;
  // No route matched: the caller must log in before learning even that.
  if (url === undefined) return { need: 'login' };
  // Unreachable (onRoute refuses such routes), but fail closed anyway.
  const rule = ruleFor(request.method, url) ?? { need: 'admin' };
  if (rule.need === 'public' && protectSystem) return { need: 'login' };
  return rule;
}

async function authenticate(
  authenticator: Authenticator,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<Principal> {
  const source = { protocol: 'http' as const, address: request.socket.remoteAddress };
  let credentials = credentialsOf(request.headers.authorization);
  if (credentials === 'malformed') {
    reply.header('www-authenticate', CHALLENGES);
    throw new UnauthenticatedError(
      'the Authorization header is neither "Basic <base64 user:password>" ' +
        'nor "Bearer <token>"',
    );
  }
  if (credentials === null) {
    if (!authenticator.guestEnabled || !isLoopback(source.address)) {
      reply.header('www-authenticate', CHALLENGES);
      throw new UnauthenticatedError(
        'credentials required: send HTTP Basic credentials or a bearer token',
      );
    }
    credentials = { kind: 'password', user: 'guest', password: 'guest' };
  }

  try {
    return await authenticator.login(credentials, source);
  } catch (err) {
    if (err instanceof UnauthenticatedError) reply.header('www-authenticate', CHALLENGES);
    if (err instanceof LoginLockedError) {
      reply.header('retry-after', String(err.retryAfterSeconds));
    }
    throw err;
  }
}

/** null when there is no Authorization header. */
function credentialsOf(header: string | undefined): Credentials | null | 'malformed' {
  if (header === undefined || header === '') return null;
  const match = /^([A-Za-z]+) +(\S+)\s*$/.exec(header);
  if (match === null) return 'malformed';
  const [, scheme, value] = match;
  if (scheme.toLowerCase() === 'bearer') return { kind: 'token', token: value };
  if (scheme.toLowerCase() !== 'basic') return 'malformed';

  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return 'malformed';
  return { kind: 'password', user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function queueInPath(request: FastifyRequest): string {
  const params = request.params as { name?: unknown } | undefined;
  return typeof params?.name === 'string' ? params.name : '';
}

/**
 * For a handler that learns which queues it touches only as it works
 * (redrive without `to`): throws the refusal for a queue the caller may
 * not publish to. Undefined when the broker runs without logins.
 */
export function publishCheck(
  principal: Principal | null,
  field: string,
): ((queue: string) => void) | undefined {
  if (principal === null) return undefined;
  return (queue) => {
    if (!may(principal, 'publish', queue)) throw refusal(principal, 'publish', queue, field);
  };
}

function refusal(
  principal: Principal,
  action: Action | 'see',
  queue: string,
  field = 'queue',
): AccessRefusedError {
  const verb = action === 'see' ? 'access' : action === 'manage' ? 'manage' : `${action} to`;
  const shown = queue.length > 200 ? `${queue.slice(0, 200)}...` : queue;
  const target =
    action === 'consume' ? `consume from queue "${shown}"` : `${verb} queue "${shown}"`;
  return new AccessRefusedError(`${describe(principal)} may not ${target}`, field);
}

function describe(principal: Principal): string {
  return principal.kind === 'token'
    ? `token "${principal.name.slice('token:'.length)}"`
    : `user "${principal.name}"`;
}
