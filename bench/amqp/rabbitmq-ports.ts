// Ports for a private RabbitMQ node started through bench/rabbitmq.sh, for
// the comparison bench and for the compatibility suite alike.

import { createServer } from 'node:net';

/**
 * An AMQP port and a run of six (distribution, four CLI ports, epmd),
 * all free on 127.0.0.1, below the ephemeral range so nothing takes them
 * between this check and the node's start.
 */
export async function freeRabbitPorts(): Promise<{ amqp: number; dist: number }> {
  for (let attempt = 0; attempt < 40; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    const wanted = [base, ...[1, 2, 3, 4, 5, 6].map((n) => base + 10 + n)];
    const free = await Promise.all(wanted.map(isFree));
    if (free.every(Boolean)) return { amqp: base, dist: base + 11 };
  }
  throw new Error('found no free block of loopback ports for RabbitMQ in 40 tries');
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
