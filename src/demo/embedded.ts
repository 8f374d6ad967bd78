// A broker for a demo to run against when none is given: the real broker
// and HTTP server, in this process, on a fresh temporary data folder and a
// free port of 127.0.0.1. close() stops both and removes the folder.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { Server } from 'node:http';
import { join } from 'node:path';

import type { AdmissionSettings } from '../broker/admission.js';

export interface EmbeddedBroker {
  /** Where it listens, e.g. http://127.0.0.1:40123. */
  url: string;
  /** Its AMQP listener, when asked for one. */
  amqpUrl?: string;
  dataDir: string;
  close(): Promise<void>;
}

export interface EmbeddedOptions {
  /** fdatasync before confirming a publish (as `usher serve`); default true. */
  sync?: boolean;
  /** Admission control thresholds (`usher serve` flags); off when absent. */
  admission?: Partial<AdmissionSettings>;
  /** Listen for AMQP 0-9-1 too, on a free port. */
  amqp?: boolean;
}

export async function startEmbeddedBroker(
  options: EmbeddedOptions = {},
): Promise<EmbeddedBroker> {
  // Loaded here: a demo against --url needs none of the server side.
  const [{ pino }, { Broker }, { createHttpServer }, { createAmqpServer }] = await Promise.all([
    import('pino'),
    import('../broker/broker.js'),
    import('../http/server.js'),
    import('../amqp/server.js'),
  ]);
  // Errors only, on stderr: anything chattier would break the status line.
  const logger = pino(
    { name: 'usher-demo', level: 'error' },
    pino.destination(2),
  );
  const dataDir = await mkdtemp(join(tmpdir(), 'usher-demo-'));

  let broker: Awaited<ReturnType<typeof Broker.open>> | undefined;
  let app: ReturnType<typeof createHttpServer> | undefined;
  let amqp: Awaited<ReturnType<typeof createAmqpServer>> | undefined;
  let amqpUrl: string | undefined;
  const close = async () => {
    try {
      await amqp?.close();
      if (app) await closeServer(app);
      await broker?.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  };

  try {
    broker = await Broker.open({
      dataDir,
      logger,
      sync: options.sync ?? true,
      admission: options.admission,
    });
    app = createHttpServer(broker, { logger, processMetrics: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    if (options.amqp) {
      amqp = await createAmqpServer({
        broker, logger, dataDir, maxMessageBytes: 16 * 1024 * 1024,
      });
      const { port } = await amqp.listen(0, '127.0.0.1');
      amqpUrl = `amqp://guest:guest@127.0.0.1:${port}`;
    }
  } catch (err) {
    await close();
    throw err;
  }

  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, amqpUrl, dataDir, close };
}

/**
 * Closes the HTTP server without waiting on stray connections. A fetch
 * aborted mid-request (a consumer stopping its long poll) leaves undici
 * opening a fresh connection that never carries a request; Node's
 * server.close() does not count it as idle, so fastify would wait for the
 * keep-alive timeout (72 s). The demo's clients are all stopped by now,
 * so cutting every connection loses nothing.
 */
async function closeServer(app: { close(): Promise<unknown>; server: Server }) {
  const closing = app.close();
  app.server.closeAllConnections();
  await closing;
}
