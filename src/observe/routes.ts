// The broker's own monitoring over HTTP: GET /alerts (the alert rules
// evaluated in the broker), GET /events (a server-sent event stream the
// dashboard draws from) and the dashboard itself under /dashboard/, whose
// few files and libraries (preact, htm, uPlot) are served from the
// package and node_modules: no build step, no CDN.

import { readFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import type { ServerResponse } from 'node:http';

import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type } from 'typebox';

import type { BrokerApi } from '../broker/types.js';
import { RouteNotFoundError, TooManyEventStreamsError } from '../errors.js';
import { documented } from '../http/route-schema.js';
import { ALERT_RULES } from './alert-rules.js';
import { AlertEvaluator } from './alerts.js';
import { chartPoint, feedState, type ChartPoint } from './feed.js';
import { observationsOf, trackConnection } from './observations.js';
import {
  DEFAULT_SAMPLE_INTERVAL_MS,
  DEFAULT_SAMPLE_KEEP_MS,
  Sampler,
  type Sample,
} from './sampler.js';
import { DEFAULT_LAG_TARGET_SECONDS } from './scaling.js';

export interface ObserveOptions {
  /** How often the broker samples its figures; default 5 s. */
  sampleIntervalMs?: number;
  /** usher_queue_consumers_needed aims at this lag; default 60 s. */
  lagTargetSeconds?: number;
  clock?: () => number;
}

/** The dashboard's own files, in the package's dashboard/ folder. */
const DASHBOARD_FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'charts.js': 'text/javascript; charset=utf-8',
  'pages.js': 'text/javascript; charset=utf-8',
  'dead-letters.js': 'text/javascript; charset=utf-8',
  'lib.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};
const DASHBOARD_DIR = new URL('../../../dashboard/', import.meta.url);

/** Library files the dashboard imports, by the name it asks for. */
const VENDOR_FILES: Record<string, { specifier: string; type: string }> = {
  'preact.mjs': { specifier: 'preact', type: 'text/javascript; charset=utf-8' },
  'hooks.mjs': { specifier: 'preact/hooks', type: 'text/javascript; charset=utf-8' },
  'htm.mjs': { specifier: 'htm', type: 'text/javascript; charset=utf-8' },
  'uPlot.esm.js': { specifier: 'uplot/dist/uPlot.esm.js', type: 'text/javascript; charset=utf-8' },
  'uPlot.min.css': { specifier: 'uplot/dist/uPlot.min.css', type: 'text/css; charset=utf-8' },
};

/**
 * Each open dashboard holds one event stream. The cap keeps a script that
 * opens streams in a loop from holding a socket and a buffer each forever.
 */
export const MAX_EVENT_STREAMS = 64;

/**
 * A stream whose reader has fallen this far behind is closed rather than
 * buffered without end; EventSource reconnects and gets the history again.
 */
const MAX_UNREAD_EVENT_BYTES = 1024 * 1024;

/** Requests that watch the broker, which do not make a connection a client. */
const WATCHING = /^\/(metrics|healthz|alerts|events|dashboard|openapi\.json)(\/|\?|$)/;

const tags = ['monitoring'];

const Severity = Type.Union([Type.Literal('critical'), Type.Literal('warning')]);
const Alerts = Type.Object({
  alerts: Type.Array(
    Type.Object({
      name: Type.String(),
      severity: Severity,
      state: Type.Union([Type.Literal('pending'), Type.Literal('firing')]),
      labels: Type.Record(Type.String(), Type.String()),
      value: Type.Number(),
      threshold: Type.Number(),
      since: Type.Integer({ description: 'epoch ms the condition began to hold' }),
      summary: Type.String(),
    }),
  ),
  rules: Type.Array(
    Type.Object({
      name: Type.String(),
      severity: Severity,
      op: Type.Union([Type.Literal('>'), Type.Literal('==')]),
      threshold: Type.Number(),
      forSeconds: Type.Integer(),
      expr: Type.String({ description: 'the PromQL expression Prometheus evaluates' }),
    }),
  ),
});

export function registerObserveRoutes(
  app: FastifyInstance,
  broker: BrokerApi,
  options: ObserveOptions,
): void {
  const observed = observationsOf(broker);
  observed.lagTargetSeconds = options.lagTargetSeconds ?? DEFAULT_LAG_TARGET_SECONDS;
  const sampler = new Sampler(broker, {
    intervalMs: options.sampleIntervalMs ?? DEFAULT_SAMPLE_INTERVAL_MS,
    keepMs: DEFAULT_SAMPLE_KEEP_MS,
    clock: options.clock,
  });
  const evaluator = new AlertEvaluator();
  const points: ChartPoint[] = [];
  const streams = new Set<ServerResponse>();

  sampler.onSample((sample: Sample) => {
    points.push(chartPoint(sampler.samples.at(-2), sample));
    if (points.length > sampler.samples.length) points.shift();
    evaluator.evaluate(sampler.samples);
    if (streams.size === 0) return;
    const update = sse('update', {
      point: points.at(-1),
      state: feedState(broker, sampler.samples, evaluator.current()),
    });
    for (const stream of streams) {
      if (stream.writableLength > MAX_UNREAD_EVENT_BYTES) {
        streams.delete(stream);
        stream.destroy();
      } else {
        stream.write(update);
      }
    }
  });

  app.addHook('onReady', async () => {
    observed.sampler = sampler;
    sampler.start();
  });
  app.addHook('preClose', async () => {
    sampler.stop();
    if (observed.sampler === sampler) observed.sampler = null;
    for (const stream of streams) stream.end();
    streams.clear();
  });

  countClientConnections(app, broker);

  app.get(
    '/alerts',
    {
      schema: documented({
        operationId: 'alerts',
        summary: 'Alerts the broker evaluates itself, and their rules',
        tags,
        response: { 200: Alerts },
      }),
    },
    async () => ({
      alerts: evaluator.current(),
      rules: ALERT_RULES.map(({ name, severity, op, threshold, forSeconds, expr }) => ({
        name,
        severity,
        op,
        threshold,
        forSeconds,
        expr,
      })),
    }),
  );

  app.get(
    '/events',
    {
      schema: documented({
        operationId: 'events',
        summary: 'Server-sent events: chart history, then an update per sample',
        tags,
        produces: 'text/event-stream',
      }),
    },
    async (request, reply) => {
      if (streams.size >= MAX_EVENT_STREAMS) throw new TooManyEventStreamsError(MAX_EVENT_STREAMS);
      reply.hijack();
      const stream = reply.raw;
      stream.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      stream.write(
        sse('history', {
          intervalMs: options.sampleIntervalMs ?? DEFAULT_SAMPLE_INTERVAL_MS,
          points,
          state: feedState(broker, sampler.samples, evaluator.current()),
        }),
      );
      streams.add(stream);
      request.raw.once('close', () => streams.delete(stream));
    },
  );

  registerDashboardFiles(app);
}

/**
 * HTTP clients are counted in usher_connections from their first request
 * that is not monitoring (a scraper or an open dashboard would otherwise
 * always count as one) until their socket closes. Clients without
 * keep-alive count only for the length of a request.
 */
function countClientConnections(app: FastifyInstance, broker: BrokerApi): void {
  const counted = new WeakSet<Socket>();
  app.addHook('onRequest', async (request) => {
    const socket = request.raw.socket;
    // inject() (tests) has no real socket, and no close to wait for.
    if (!(socket instanceof Socket) || counted.has(socket)) return;
    if (WATCHING.test(request.url)) return;
    counted.add(socket);
    socket.once('close', trackConnection(broker, 'http'));
  });
}

function registerDashboardFiles(app: FastifyInstance): void {
  const file = Type.Object({ file: Type.String({ maxLength: 64 }) });
  const serve = async (reply: FastifyReply, url: URL, type: string) =>
    reply
      .type(type)
      .header('cache-control', 'no-cache')
      .send(await readFile(url));

  app.get(
    '/dashboard',
    {
      schema: documented({
        operationId: 'dashboardRoot',
        summary: 'Redirects to /dashboard/',
        tags,
        produces: 'text/html',
      }),
    },
    async (_request, reply) => reply.redirect('/dashboard/'),
  );
  app.get(
    '/dashboard/',
    {
      schema: documented({
        operationId: 'dashboard',
        summary: 'The web dashboard',
        tags,
        produces: 'text/html',
      }),
    },
    async (_request, reply) =>
      serve(reply, new URL('index.html', DASHBOARD_DIR), DASHBOARD_FILES['index.html']),
  );
  app.get<{ Params: { file: string } }>(
    '/dashboard/:file',
    {
      schema: documented({
        operationId: 'dashboardFile',
        summary: 'A file of the dashboard',
        tags,
        params: file,
        produces: 'text/plain',
      }),
    },
    async (request, reply) => {
      const type = Object.hasOwn(DASHBOARD_FILES, request.params.file)
        ? DASHBOARD_FILES[request.params.file]
        : undefined;
      if (type === undefined) throw new RouteNotFoundError('GET', request.url);
      return serve(reply, new URL(request.params.file, DASHBOARD_DIR), type);
    },
  );
  app.get<{ Params: { file: string } }>(
    '/dashboard/vendor/:file',
    {
      schema: documented({
        operationId: 'dashboardLibrary',
        summary: 'A library the dashboard uses, from node_modules',
        tags,
        params: file,
        produces: 'text/plain',
      }),
    },
    async (request, reply) => {
      const vendor = Object.hasOwn(VENDOR_FILES, request.params.file)
        ? VENDOR_FILES[request.params.file]
        : undefined;
      if (vendor === undefined) throw new RouteNotFoundError('GET', request.url);
      return serve(reply, new URL(import.meta.resolve(vendor.specifier)), vendor.type);
    },
  );
}

function sse(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
