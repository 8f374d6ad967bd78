// Usher's AMQP 0-9-1 listener (default port 5672): accepts connections and
// hands each to an AmqpConnection. Closing tells every client the broker is
// going away (connection.close 320), as RabbitMQ does, then stops.

import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';

import type { Broker } from '../broker/broker.js';
import { trackConnection } from '../observe/observations.js';
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
}

export interface AmqpServer {
  listen(port: number, host: string): Promise<AddressInfo>;
  close(): Promise<void>;
}

export async function createAmqpServer(options: AmqpServerOptions): Promise<AmqpServer> {
  const logger = options.logger.child({ component: 'amqp' });
  const topology = await Topology.open(options.dataDir, options.broker, logger);
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
    });
    connections.add(connection);
    const untrack = trackConnection(options.broker, 'amqp');
    socket.once('close', () => {
      untrack();
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
      topology.close();
      await topology.flush();
    },
  };
}
