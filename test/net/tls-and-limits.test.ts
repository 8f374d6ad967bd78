// TLS for HTTP and AMQP with a self-signed certificate made by openssl
// (skipped, saying so, when openssl is missing), and the per-source
// connection and per-queue consumer limits, over real sockets on loopback.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as tcpConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import amqp from 'amqplib';
import pino from 'pino';

import { createAmqpServer } from '../../src/amqp/server.js';
import type { Broker } from '../../src/broker/broker.js';
import { createHttpServer } from '../../src/http/server.js';
import type { TlsFiles } from '../../src/net/tls.js';
import { openBroker, tempDir } from '../helpers.js';

const silent = pino({ level: 'silent' });
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let tls: TlsFiles;

before(async () => {
  dir = tempDir('usher-tls-');
  broker = await openBroker(dir.path);
  if (hasOpenssl) {
    const cert = join(dir.path, 'cert.pem');
    const key = join(dir.path, 'key.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', key, '-out', cert,
    ], { stdio: 'ignore' });
    tls = { cert: readFileSync(cert), key: readFileSync(key) };
  }
});

after(async () => {
  await broker.close();
  dir.remove();
});

function getHttps(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path, ca: tls.cert, servername: 'localhost' },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** What a plain-text HTTP request to `port` gets back before the close. */
function plainRequest(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => (answer += chunk));
    socket.on('error', () => {});
    socket.on('close', () => resolve(answer));
    socket.write('GET /queues HTTP/1.1\r\nHost: x\r\n\r\n');
    setTimeout(() => socket.destroy(), 3000).unref();
  });
}

describe('TLS', { skip: hasOpenssl ? false : 'openssl is not installed: no certificate to test with' }, () => {
  it('serves HTTPS only when given a certificate', async () => {
    const app = createHttpServer(broker, { logger: silent, processMetrics: false, tls });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const port = (app.server.address() as { port: number }).port;
      const answer = await getHttps(port, '/healthz');
      assert.equal(answer.status, 200);
      assert.equal(JSON.parse(answer.body).status, 'ok');
      assert.ok(!(await plainRequest(port)).startsWith('HTTP/1.1 200'), 'no plaintext answer');
    } finally {
      await app.close();
    }
  });

  it('serves AMQP over TLS next to plain AMQP', async () => {
    const server = await createAmqpServer({
      broker, logger: silent, dataDir: dir.path, maxMessageBytes: 1 << 20, tls,
    });
    const secure = await server.listenTls(0, '127.0.0.1');
    try {
      const model = await amqp.connect(`amqps://guest:guest@127.0.0.1:${secure.port}`, {
        ca: [tls.cert],
        servername: 'localhost',
      });
      const channel = await model.createConfirmChannel();
      await channel.assertQueue('tls.q');
      channel.sendToQueue('tls.q', Buffer.from('over tls'));
      await channel.waitForConfirms();
      const got = await channel.get('tls.q', { noAck: true });
      assert.ok(got !== false && got.content.toString() === 'over tls');
      await model.close();

      // A client that does not trust the certificate is refused.
      await assert.rejects(amqp.connect(`amqps://guest:guest@127.0.0.1:${secure.port}`));
    } finally {
      await server.close();
    }
  });
});

describe('connection and consumer limits', () => {
  it('refuses an AMQP connection over the per-source limit with 530', async () => {
    const server = await createAmqpServer({
      broker, logger: silent, dataDir: dir.path, maxMessageBytes: 1 << 20,
      maxConnectionsPerSource: 2,
    });
    const { port } = await server.listen(0, '127.0.0.1');
    const url = `amqp://guest:guest@127.0.0.1:${port}`;
    try {
      const first = await amqp.connect(url);
      const second = await amqp.connect(url);
      await assert.rejects(amqp.connect(url), /530|NOT_ALLOWED|too many connections/);
      await first.close();
      // A closed connection frees its place.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const third = await amqp.connect(url);
      await third.close();
      await second.close();
    } finally {
      await server.close();
    }
  });

  it('refuses consumers over the per-queue limit with 406', async () => {
    const server = await createAmqpServer({
      broker, logger: silent, dataDir: dir.path, maxMessageBytes: 1 << 20,
      maxConsumersPerQueue: 2,
    });
    const { port } = await server.listen(0, '127.0.0.1');
    try {
      const model = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`);
      const channel = await model.createChannel();
      await channel.assertQueue('limited.q');
      await channel.consume('limited.q', () => {});
      await channel.consume('limited.q', () => {});
      const other = await model.createChannel();
      other.on('error', () => {});
      await assert.rejects(other.consume('limited.q', () => {}), /406|2 consumers, the limit/);
      await model.close();
    } finally {
      await server.close();
    }
  });

  it('answers 429 TOO_MANY_CONNECTIONS over the per-source HTTP limit', async () => {
    const app = createHttpServer(broker, {
      logger: silent, processMetrics: false, maxConnectionsPerSource: 2,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const socket = tcpConnect(port, '127.0.0.1');
        await new Promise((resolve) => socket.once('connect', resolve));
        held.push(socket);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
      const answer = await plainRequest(port);
      assert.match(answer, /^HTTP\/1.1 429/);
      assert.match(answer, /"code":"TOO_MANY_CONNECTIONS"/);
    } finally {
      for (const socket of held) socket.destroy();
      await app.close();
    }
  });
});
