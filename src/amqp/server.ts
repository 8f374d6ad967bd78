// Usher's AMQP 0-9-1 listener (default port 5672): accepts connections and
// hands each to an AmqpConnection. Closing tells every client the broker is
// going away (connection.close 320), as RabbitMQ does, then stops.

import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Logger } from 'pino';

import { Authenticator } from '../auth/authenticator.js';
import { UserStore } from '../auth/user-store.js';
import type { Broker } from '../broker/broker.js';
import { SourceLimit } from '../net/source-limit.js';
import { serverTlsOptions, type TlsFiles } from '../net/tls.js';
import { trackConnection } from '../observe/observations.js';
import { AmqpConnection, heldBodyLimits } from './connection.js';
import { DirectReplies } from './direct-reply.js';
import { Topology } from './topology.js';

export interface AmqpServerOptions {
  broker: Broker;
  logger: Logger;
  /** Where exchanges and bindings are kept (the broker's data folder). */
  dataDir: string;
  maxMessageBytes: number;
  /** Largest frame offered in connection.tune (RabbitMQ's default). */
  frameMax?: number;
  channelMax?: number;
  /** Heartbeat offered in connection.tune, in seconds (0 = none). */
  heartbeatSeconds?: number;
  /** Who may log in (src/auth); default: the guest from loopback only. */
  authenticator?: Authenticator;
  /** Certificate and key for listenTls (AMQPS). */
  tls?: TlsFiles;
  /** Open connections per source address; default 4096. */
  maxConnectionsPerSource?: number;
  /** Consumers on one queue, over all connections; default 10,000. */
  maxConsumersPerQueue?: number;
  /** exchanges.journal size that may trigger a new snapshot; default 4 MiB. */
  topologyJournalCompactBytes?: number;
  /**
   * How long a channel may hold a delivery unacked before it is closed
   * with 406 (RabbitMQ's consumer_timeout); default 30 minutes.
   */
  consumerTimeoutMs?: number;
  /** Bounds of bodies held before they are published (connection.ts); tests set smaller ones. */
  heldBodyLimits?: { connection: number; all: number };
}

export interface AmqpServer {
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Listens for AMQP over TLS; needs `tls` in the options. */
  listenTls(port: number, host: string): Promise<AddressInfo>;
  /** New connections over TLS use these from now on. */
  setTls(files: TlsFiles): void;
  close(): Promise<void>;
}

export async function createAmqpServer(options: AmqpServerOptions): Promise<AmqpServer> {
  const logger = options.logger.child({ component: 'amqp' });
  const topology = await Topology.open(options.dataDir, options.broker, logger, {
    compactFloorBytes: options.topologyJournalCompactBytes,
  });
  const authenticator =
    options.authenticator ?? new Authenticator({ store: UserStore.inMemory(), logger });
  authenticator.reportTo(options.broker);
  const connections = new Set<AmqpConnection>();
  /** Closed connections still deleting their exclusive queues. */
  const closing = new Set<AmqpConnection>();

  const perSource = new SourceLimit(options.maxConnectionsPerSource);
  const heldBodies = { bytes: 0 };
  const directReplies = new DirectReplies();

  const accept = (socket: Socket) => {
    // Over the limit: the connection is refused after the protocol header
    // with connection.close 530, so the client can say why.
    const admitted = perSource.admit(socket.remoteAddress);
    const connection = new AmqpConnection(socket, {
      broker: options.broker,
      topology,
      logger,
      frameMax: options.frameMax ?? 131_072,
      channelMax: options.channelMax ?? 2047,
      heartbeatSeconds: options.heartbeatSeconds ?? 60,
      maxMessageBytes: options.maxMessageBytes,
      authenticator,
      maxConsumersPerQueue: options.maxConsumersPerQueue ?? 10_000,
      heldBodies,
      heldBodyLimits: options.heldBodyLimits ?? heldBodyLimits(options.maxMessageBytes),
      consumerTimeoutMs: options.consumerTimeoutMs ?? 30 * 60 * 1000,
      directReplies,
      refusal: admitted
        ? null
        : `too many connections from ${socket.remoteAddress} (limit ${perSource.max})`,
    });
    connections.add(connection);
    const untrack = trackConnection(options.broker, 'amqp');
    socket.once('close', () => {
      untrack();
      if (admitted) perSource.release(socket.remoteAddress);
      connections.delete(connection);
      closing.add(connection);
      void connection.cleanedUp.then(() => closing.delete(connection));
    });
  };
  const server: Server = createServer(accept);
  const tlsServer =
    options.tls === undefined ? null : createTlsServer(serverTlsOptions(options.tls), accept);
  // A failed TLS handshake is the client's problem, not the broker's.
  tlsServer?.on('tlsClientError', (err) => logger.debug({ err }, 'TLS handshake failed'));

  return {
    listen: (port, host) => listenOn(server, port, host),

    listenTls(port, host) {
      if (tlsServer === null) throw new Error('listenTls needs tls in the options');
      return listenOn(tlsServer, port, host);
    },

    setTls(files) {
      tlsServer?.setSecureContext(serverTlsOptions(files));
    },

    async close() {
      const closed = Promise.all(
        [server, tlsServer].map(
          (s) =>
            new Promise<void>((resolve) => (s?.listening ? s.close(() => resolve()) : resolve())),
        ),
      );
      const all = [...connections, ...closing];
      for (const connection of all) connection.shutdown();
      await closed;
      // Exclusive queues of the last connections, and their saves, finish
      // before the caller closes the broker or removes its folder.
      await Promise.all(all.map((connection) => connection.cleanedUp));
      topology.close();
      await topology.flush();
    },
  };
}

function listenOn(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
