// What checking credentials costs an HTTP request, measured in process
// with fastify's inject (no sockets): the same publish as the guest (no
// header), as a user with HTTP Basic (scrypt once, then remembered), and
// with a bearer token, interleaved in rounds so machine load hits all
// three alike, each going first in turn. Prints requests per second and each as a ratio of the
// guest's. Also times one scrypt verification (a first login).
//
//   npx tsc -p tsconfig.json && node dist/bench/auth-bench.js [--requests N]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pino from 'pino';

import { Authenticator } from '../src/auth/authenticator.js';
import { hashPassword, verifyPassword } from '../src/auth/password.js';
import { UserStore } from '../src/auth/user-store.js';
import { Broker } from '../src/broker/broker.js';
import { createHttpServer } from '../src/http/server.js';
import { benchArgs } from './bench-args.js';

const values = benchArgs('node dist/bench/auth-bench.js', { requests: { type: 'string', default: '3000' } });
const perRound = Math.max(100, Math.floor(Number(values.requests) / 5));
const logger = pino({ level: 'silent' });

const dir = mkdtempSync(join(tmpdir(), 'usher-auth-bench-'));
const broker = await Broker.open({ dataDir: dir, logger, sync: false });
const store = UserStore.inMemory();
await store.addUser('svc', 'svc password', {
  permissions: { publish: ['bench.*'], consume: ['bench.*'], manage: ['bench.*'] },
});
const { token } = await store.createToken('bench', {
  publish: ['bench.*'],
  consume: [],
  manage: [],
});
const app = createHttpServer(broker, {
  logger,
  processMetrics: false,
  authenticator: new Authenticator({ store, logger }),
});
await app.ready();
await broker.createQueue('bench.q', {});

const kinds: Record<string, Record<string, string>> = {
  guest: {},
  basic: { authorization: `Basic ${Buffer.from('svc:svc password').toString('base64')}` },
  bearer: { authorization: `Bearer ${token}` },
};
const elapsed: Record<string, number> = { guest: 0, basic: 0, bearer: 0 };
const payload = JSON.stringify({ body: { sku: 'A1', qty: 2 } });

// One request each first: the user's first login pays scrypt, timed below.
for (const headers of Object.values(kinds)) {
  await app.inject({
    method: 'POST',
    url: '/queues/bench.q/messages',
    headers: { ...headers, 'content-type': 'application/json' },
    payload,
  });
}

for (let round = 0; round < 5; round++) {
  // Each kind goes first in turn: whatever follows a purge pays for it.
  const order = Object.entries(kinds);
  for (let i = 0; i < round % order.length; i++) order.push(order.shift()!);
  for (const [kind, headers] of order) {
    const started = performance.now();
    for (let i = 0; i < perRound; i++) {
      const response = await app.inject({
        method: 'POST',
        url: '/queues/bench.q/messages',
        headers: { ...headers, 'content-type': 'application/json' },
        payload,
      });
      if (response.statusCode !== 201) throw new Error(`${kind}: ${response.statusCode} ${response.body}`);
    }
    elapsed[kind] += performance.now() - started;
  }
  await broker.purgeQueue('bench.q');
}

const rate = (kind: string) => (perRound * 5 * 1000) / elapsed[kind];
for (const kind of Object.keys(kinds)) {
  console.log(
    `${kind.padEnd(6)} ${rate(kind).toFixed(0).padStart(7)} publishes/s  ` +
      `x${(rate(kind) / rate('guest')).toFixed(2)} of guest`,
  );
}

const stored = await hashPassword('x'.repeat(16));
const started = performance.now();
for (let i = 0; i < 5; i++) await verifyPassword('x'.repeat(16), stored);
console.log(`scrypt verification (first login): ${((performance.now() - started) / 5).toFixed(1)} ms`);

await app.close();
await broker.close();
rmSync(dir, { recursive: true, force: true });
