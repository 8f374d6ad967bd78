// Usher's HTTP API (docs/http-api.md): a fastify instance over a BrokerApi.
// The caller owns the lifecycle: createHttpServer builds the routes, the
// caller calls `.listen()` and, on shutdown, `.close()` before closing the
// broker. Closing cuts long polls short (they answer with no messages) and
// waits for the other requests in flight.
//
//   const app = createHttpServer(broker, { logger });
//   await app.listen({ host: '127.0.0.1', port: 8080 });

import { STATUS_CODES, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type RouteOptions,
} from 'fastify';
import type { Logger } from 'pino';
import { Type } from 'typebox';

import { Authenticator } from '../auth/authenticator.js';
import { UserStore } from '../auth/user-store.js';
import type { BrokerApi } from '../broker/types.js';
import {
  BadRequestError,
  BrokerClosedError,
  HeadersTooLargeError,
  RequestTimeoutError,
} from '../errors.js';
import { recordUnauthorized } from '../observe/observations.js';
import { registerObserveRoutes, type ObserveOptions } from '../observe/routes.js';
import { serverTlsOptions, type TlsFiles } from '../net/tls.js';
import { registerAdminRoutes } from './admin-routes.js';
import { registerScrubRoute } from './scrub-route.js';
import { registerAuth } from './auth-hook.js';
import { limitConnectionsPerSource } from './connection-limit.js';
import { handleNotFound, makeErrorHandler } from './error-handler.js';
import { registerJsonBody } from './json-body.js';
import { registerMessageRoutes } from './message-routes.js';
import { createMetrics } from './metrics.js';
import { buildOpenApi } from './openapi.js';
import { registerQueueRoutes } from './queue-routes.js';
import { documented } from './route-schema.js';
import { ErrorBody, Health } from './schemas.js';

export interface HttpServerOptions {
  logger: Logger;
  /** Largest message body in bytes; default 16 MiB. */
  maxMessageBytes?: number;
  /** Export Node.js process metrics on /metrics too; default true. */
  processMetrics?: boolean;
  /** Sampling for /alerts, /events and the dashboard (src/observe/routes.ts). */
  observe?: ObserveOptions;
  /**
   * Who may do what (src/auth). Default: no users, the guest from
   * loopback only, as for a broker started without a data folder.
   */
  authenticator?: Authenticator;
  /** Require credentials on /healthz and /metrics too; default false. */
  protectSystemRoutes?: boolean;
  /** Serve HTTPS only, with this certificate and key. */
  tls?: TlsFiles;
  /** Open connections per source address; default 4096. */
  maxConnectionsPerSource?: number;
  /**
   * The other protocols' ports, shown in /healthz so that a client given
   * the HTTP URL finds them (`usher demo ticketing --amqp`). Read at each
   * request: `usher serve` fills it in once AMQP listens, after HTTP.
   */
  listeners?: Listeners;
}

export interface Listeners {
  amqp?: number;
  amqps?: number;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Room in a request body beyond the message body itself; see bodyLimitFor. */
export const ENVELOPE_BYTES = 1024 * 1024;

/**
 * The largest request body accepted. The biggest message travels as
 * base64, which takes 4 bytes per 3, and the JSON around it (id, headers,
 * field names) gets ENVELOPE_BYTES. A batch shares the same limit in total,
 * and a body sent as an escaped JSON string can grow more than base64
 * does; both are refused with 413 past this size, and clients with large
 * payloads should send bodyBase64 one message at a time.
 */
export function bodyLimitFor(maxMessageBytes: number): number {
  return Math.ceil(maxMessageBytes / 3) * 4 + ENVELOPE_BYTES;
}

/** How long a client may take to send one whole request. */
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * Bytes that are not HTTP never reach a route; Node's parser reports them
 * here. They are answered in our error envelope and the connection is
 * closed, since nothing after a parse error can be trusted to line up.
 */
function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const refusal =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new RequestTimeoutError(REQUEST_TIMEOUT_MS)
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? new HeadersTooLargeError()
        : new BadRequestError(
            `the request is not valid HTTP/1.1 (${err.code ?? 'parse error'})`,
          );
  const { code, status, message } = refusal;
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

/** How long closing waits for requests in flight before cutting sockets. */
const CLOSE_GRACE_MS = 2000;

export function createHttpServer(
  broker: BrokerApi,
  options: HttpServerOptions,
): FastifyInstance {
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const bodyLimit = bodyLimitFor(maxMessageBytes);
  const handleError = makeErrorHandler(bodyLimit);

  const logger: FastifyBaseLogger = options.logger.child({ component: 'http' });
  const app = Fastify({
    loggerInstance: logger,
    logController: new QuietRequestLog(),
    bodyLimit,
    // Queue names go up to 255 UTF-8 bytes, which percent-encoded take
    // three times as many characters in the path.
    routerOptions: { maxParamLength: 1024 },
    // Bodies are checked strictly: a string is not coerced into a number
    // and an unknown field is refused rather than silently dropped, so a
    // typo such as "delayMS" is reported. `verbose` keeps the offending
    // value for the error message.
    ajv: {
      customOptions: {
        coerceTypes: false,
        removeAdditional: false,
        verbose: true,
      },
    },
    frameworkErrors: (err: FastifyError, request, reply) =>
      handleError(err, request, reply),
    // Fastify's own 503 while closing is not our error envelope; the hook
    // below answers BROKER_CLOSED instead.
    return503OnClosing: false,
    // A client that stops sending mid-request is cut off after this long;
    // long polls are not affected (this bounds the request, not the answer).
    requestTimeout: REQUEST_TIMEOUT_MS,
    clientErrorHandler: answerClientError,
    // Node answers a request without Host itself, with an empty body; the
    // broker does not route by host, so it simply serves such a request.
    http: { requireHostHeader: false },
    ...(options.tls === undefined ? {} : { https: serverTlsOptions(options.tls) }),
  }) as unknown as FastifyInstance;
  limitConnectionsPerSource(
    app.server,
    options.maxConnectionsPerSource,
    options.tls !== undefined,
    logger,
  );

  registerJsonBody(app, bodyLimit);
  app.setErrorHandler(handleError);
  app.setNotFoundHandler(handleNotFound);

  // Requests that still arrive on kept-alive connections while closing.
  let closing = false;
  const sockets = openSockets(app.server, options.tls !== undefined);
  app.addHook('preClose', async () => {
    closing = true;
    // A socket that has sent nothing (a browser's spare connection next to
    // an open dashboard, a load balancer's TCP check) holds no request,
    // yet Node's close() waits for it as for one: a stop with one open
    // took the whole grace below. Such a socket is cut at once.
    for (const socket of sockets) if (socket.bytesRead === 0) socket.destroy();
    // Requests in flight get a grace period to finish. Then every socket
    // is cut: a client that aborted a request may leave a connection that
    // never sends one, which Node does not count as idle, and close()
    // would otherwise wait for the keep-alive timeout (72 s).
    setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS).unref();
  });
  app.addHook('onRequest', async () => {
    if (closing) throw new BrokerClosedError();
  });

  // Before any route: the auth hooks check each route as it is added.
  const authenticator =
    options.authenticator ??
    new Authenticator({ store: UserStore.inMemory(), logger: options.logger });
  authenticator.reportTo(broker);
  registerAuth(app, {
    authenticator,
    protectSystemRoutes: options.protectSystemRoutes,
    onRefused: () => recordUnauthorized(broker, 'http'),
  });

  // Every route is recorded as it is added; /openapi.json describes them.
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (route) => {
    routes.push(route);
  });

  registerSystemRoutes(app, broker, routes, options, authenticator);
  registerQueueRoutes(app, broker);
  registerMessageRoutes(app, broker, maxMessageBytes);
  registerObserveRoutes(app, broker, options.observe ?? {});
  registerAdminRoutes(app, authenticator);
  registerScrubRoute(app, broker);
  return app;
}

function registerSystemRoutes(
  app: FastifyInstance,
  broker: BrokerApi,
  routes: RouteOptions[],
  options: HttpServerOptions,
  authenticator: Authenticator,
): void {
  app.get(
    '/healthz',
    {
      schema: documented({
        operationId: 'health',
        summary: 'Broker health; 503 while degraded',
        tags: ['system'],
        // 503 is the health while degraded, or an error while closing.
        response: { 200: Health, 503: Type.Union([Health, ErrorBody]) },
      }),
    },
    async (_request, reply) => {
      const health = broker.health();
      const { listeners } = options;
      const body = listeners === undefined || Object.keys(listeners).length === 0
        ? health
        : { ...health, listeners };
      return reply.code(health.status === 'ok' ? 200 : 503).send(body);
    },
  );

  const metrics = createMetrics(broker, {
    processMetrics: options.processMetrics ?? true,
  });
  app.get(
    '/metrics',
    {
      schema: documented({
        operationId: 'metrics',
        summary: 'Prometheus metrics (docs/metrics.md)',
        tags: ['system'],
        produces: metrics.contentType,
      }),
    },
    async (_request, reply) => {
      const text = await metrics.scrape();
      return reply.type(metrics.contentType).send(text);
    },
  );

  // Built on first request: by then every route has been added.
  let document: unknown;
  app.get(
    '/openapi.json',
    {
      schema: documented({
        operationId: 'openapi',
        summary: 'This API as an OpenAPI 3.0 document',
        tags: ['system'],
        produces: 'application/json',
      }),
    },
    async (_request, reply) => {
      document ??= buildOpenApi(routes);
      return reply.type('application/json').send(JSON.stringify(document));
    },
  );
}

// Request lines at info level would log every publish and ack; they go to
// debug, and errors are logged by the error handler.
class QuietRequestLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    _request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (error) {
      reply.log.error({ err: error }, 'request errored');
      return;
    }
    reply.log.debug(
      { statusCode: reply.statusCode, responseTime: reply.elapsedTime },
      'request completed',
    );
  }
}

/**
 * The server's client sockets while they are open: over TLS once the
 * handshake is done, the TLS socket, whose bytesRead counts HTTP bytes
 * only.
 */
function openSockets(server: Server, tls: boolean): Set<Socket> {
  const open = new Set<Socket>();
  server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  return open;
}
