// Usher's AMQP 0-9-1 listener (default port 5672): accepts connections and
// hands each to an AmqpConnection. Closing tells every client the broker is
// going away (connection.close 320), as RabbitMQ does, then stops.

import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';

import { Authenticator } from '../auth/authenticator.js';
import { UserStore } from '../auth/user-store.js';
import type { Broker } from '../broker/broker.js';
import { AmqpConnection } from './connection.js';
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
}

export interface AmqpServer {
  listen(port: number, host: string): Promise<AddressInfo>;
  close(): Promise<void>;
}

export async function createAmqpServer(options: AmqpServerOptions): Promise<AmqpServer> {
  const logger = options.logger.child({ component: 'amqp' });
  const topology = await Topology.open(options.dataDir, options.broker, logger);
  const authenticator =
    options.authenticator ?? new Authenticator({ store: UserStore.inMemory(), logger });
  const connections = new Set<AmqpConnection>();
  /** Closed connections still deleting their exclusive queues. */
  const closing = new Set<AmqpConnection>();

  const server: Server = createServer((socket: Socket) => {
    const connection = new AmqpConnection(socket, {
      broker: options.broker,
      topology,
      logger,
      frameMax: options.frameMax ?? 131_072,
      channelMax: options.channelMax ?? 2047,
      heartbeatSeconds: options.heartbeatSeconds ?? 60,
      maxMessageBytes: options.maxMessageBytes,
      authenticator,
    });
    connections.add(connection);
    socket.once('close', () => {
      connections.delete(connection);
      closing.add(connection);
      void connection.cleanedUp.then(() => closing.delete(connection));
    });
  });

  return {
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },

    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const all = [...connections, ...closing];
      for (const connection of all) connection.shutdown();
      await closed;
      // Exclusive queues of the last connections, and their saves, finish
      // before the caller closes the broker or removes its folder.
      await Promise.all(all.map((connection) => connection.cleanedUp));
      await topology.flush();
    },
  };
}
