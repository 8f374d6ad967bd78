// The HTTP API over a real Broker in a temp folder, driven with fastify's
// inject() (or a real socket where the test needs one), with the server's
// log lines kept for assertions.

import type { FastifyInstance, InjectOptions } from 'fastify';
import pino from 'pino';

import type { Broker, BrokerOptions } from '../../src/broker/broker.js';
import { createHttpServer } from '../../src/http/server.js';
import type { ObserveOptions } from '../../src/observe/routes.js';
import { openBroker, tempDir } from '../helpers.js';

export interface LogLine {
  level: number;
  msg: string;
  err?: { message: string; stack: string };
  [key: string]: unknown;
}

export interface Harness {
  broker: Broker;
  app: FastifyInstance;
  /** The broker's data folder, for a test that reopens it. */
  dir: string;
  /** Every line the server and broker logged, parsed. */
  logs: LogLine[];
  close(): Promise<void>;
}

export interface Answer {
  status: number;
  headers: Record<string, unknown>;
  /** Parsed JSON, or the text; `any` so tests can reach into it. */
  body: any;
  raw: Buffer;
}

export async function startHttp(
  options: {
    maxMessageBytes?: number;
    processMetrics?: boolean;
    observe?: ObserveOptions;
    /** More of the broker's options: a test's StoreIo, sync. */
    broker?: Partial<BrokerOptions>;
  } = {},
): Promise<Harness> {
  const dir = tempDir('usher-http-');
  const logs: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => logs.push(JSON.parse(line) as LogLine) },
  );

  const broker = await openBroker(dir.path, {
    ...options.broker,
    logger,
    maxMessageBytes: options.maxMessageBytes,
  });
  const app = createHttpServer(broker, {
    logger,
    maxMessageBytes: options.maxMessageBytes,
    processMetrics: options.processMetrics ?? false,
    observe: options.observe,
  });
  await app.ready();

  return {
    broker,
    app,
    dir: dir.path,
    logs,
    async close() {
      await app.close();
      await broker.close();
      dir.remove();
    },
  };
}

/** One request through inject(); a payload object is sent as JSON. */
export async function call(
  app: FastifyInstance,
  method: InjectOptions['method'],
  url: string,
  payload?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const options: InjectOptions = { method, url, headers: { ...headers } };
  if (payload !== undefined) {
    options.payload =
      typeof payload === 'string' || Buffer.isBuffer(payload)
        ? payload
        : JSON.stringify(payload);
    options.headers = { 'content-type': 'application/json', ...headers };
  }

  const response = await app.inject(options);
  const raw = response.rawPayload;
  const type = String(response.headers['content-type'] ?? '');
  const isJson = type.startsWith('application/json') && raw.length > 0;
  return {
    status: response.statusCode,
    headers: response.headers,
    body: isJson ? JSON.parse(raw.toString()) : raw.toString(),
    raw,
  };
}

/** Lines logged at error level or above. */
export function errorsLogged(logs: LogLine[]): LogLine[] {
  return logs.filter((line) => line.level >= 50);
}

/** The value of one sample line of a scrape, e.g. `usher_up` or `x{queue="q"}`. */
export function metricSample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length));
  }
  return undefined;
}
