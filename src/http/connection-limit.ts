// Open HTTP connections per source address (src/net/source-limit.ts). A
// connection over the limit gets one 429 TOO_MANY_CONNECTIONS answer in
// our error envelope and is closed; over TLS, where plain bytes cannot be
// sent before the handshake, it is closed and the refusal logged.

import type { Server } from 'node:net';
import type { Socket } from 'node:net';

import type { FastifyBaseLogger } from 'fastify';

import { TooManyConnectionsError } from '../errors.js';
import { SourceLimit } from '../net/source-limit.js';

export function limitConnectionsPerSource(
  server: Server,
  max: number | undefined,
  tls: boolean,
  logger: FastifyBaseLogger,
): void {
  const limit = new SourceLimit(max);
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress;
    if (limit.admit(address)) {
      socket.once('close', () => limit.release(address));
      return;
    }
    const refusal = new TooManyConnectionsError(address ?? 'unknown', limit.max);
    logger.warn({ address, limit: limit.max }, 'connection refused: too many from this address');
    if (tls) {
      socket.destroy();
      return;
    }
    const body = JSON.stringify({ error: { code: refusal.code, message: refusal.message } });
    socket.end(
      'HTTP/1.1 429 Too Many Requests\r\n' +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  });
}
