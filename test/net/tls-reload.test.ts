// A renewed certificate is taken on SIGHUP without a restart, on HTTPS and
// AMQPS; a broken pair is refused with a log line and the old one kept.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:tls';

import { ServeProcess } from '../fault/serve-process.js';
import { tempDir } from '../helpers.js';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

let dir: ReturnType<typeof tempDir>;
let usher: ServeProcess;
let certPath: string;
let keyPath: string;

function makeCertificate(cert: string, key: string): void {
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
}

/** The SHA-256 fingerprint of the certificate a new connection is shown. */
function fingerprintAt(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

async function until(check: () => Promise<boolean>, what: string, everyMs = 50): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

describe('TLS certificate reload on SIGHUP', { skip: hasOpenssl ? false : 'openssl is not installed' }, () => {
  before(async () => {
    dir = tempDir('usher-tls-reload-');
    certPath = join(dir.path, 'cert.pem');
    keyPath = join(dir.path, 'key.pem');
    makeCertificate(certPath, keyPath);
    usher = new ServeProcess(join(dir.path, 'data'), [
      '--tls-cert', certPath, '--tls-key', keyPath, '--amqps-port', '0', '--tls-only',
    ]);
    await usher.start();
  });

  after(async () => {
    await usher?.kill();
    dir.remove();
  });

  it('shows new connections the renewed certificate, on HTTPS and AMQPS', async () => {
    const amqpsPort = Number(/amqps:\/\/[^"\s]+:(\d+)/.exec(usher.stdout)?.[1]);
    const httpsBefore = await fingerprintAt(usher.port);
    const amqpsBefore = await fingerprintAt(amqpsPort);
    assert.equal(httpsBefore, amqpsBefore);

    const renewedCert = join(dir.path, 'renewed-cert.pem');
    const renewedKey = join(dir.path, 'renewed-key.pem');
    makeCertificate(renewedCert, renewedKey);
    copyFileSync(renewedKey, keyPath);
    copyFileSync(renewedCert, certPath);
    usher.signal('SIGHUP');

    await until(async () => (await fingerprintAt(usher.port)) !== httpsBefore, 'HTTPS to change');
    assert.notEqual(await fingerprintAt(amqpsPort), amqpsBefore);
    assert.equal(await fingerprintAt(amqpsPort), await fingerprintAt(usher.port));
    assert.match(usher.stdout, /TLS certificate reloaded/);
  });

  it('keeps the certificate it has when the new files do not make a pair', async () => {
    const current = await fingerprintAt(usher.port);
    const otherCert = join(dir.path, 'other-cert.pem');
    makeCertificate(otherCert, join(dir.path, 'other-key.pem'));
    copyFileSync(otherCert, certPath); // the key stays the old one: no pair
    usher.signal('SIGHUP');

    await until(async () => /not reloaded/.test(usher.stdout), 'the refusal in the log');
    assert.equal(await fingerprintAt(usher.port), current);
    assert.ok(usher.warnings().some((entry) => /not reloaded/.test(String(entry.msg))));

    writeFileSync(certPath, 'not a certificate');
    usher.signal('SIGHUP');
    await until(
      async () => usher.warnings().filter((entry) => /not reloaded/.test(String(entry.msg))).length === 2,
      'the second refusal',
    );
    assert.equal(await fingerprintAt(usher.port), current);
  });
});

// Log rotators and operators send SIGHUP expecting a reload; Node's default
// for it would end a broker that has no certificate to reload.
describe('SIGHUP without TLS', () => {
  let plainDir: ReturnType<typeof tempDir>;
  let plain: ServeProcess;

  before(async () => {
    plainDir = tempDir('usher-hup-plain-');
    plain = new ServeProcess(join(plainDir.path, 'data'));
    await plain.start();
  });

  after(async () => {
    await plain?.kill();
    plainDir.remove();
  });

  it('keeps the broker running and serving', async () => {
    plain.signal('SIGHUP');
    await until(async () => /no TLS certificate to reload/.test(plain.stdout), 'the log line');
    const health = await plain.request('GET', '/healthz');
    assert.equal(health.status, 200);
  });
});

describe('SIGHUP while the broker starts', () => {
  it('is ignored, not fatal, while the log is replayed', async () => {
    const startDir = tempDir('usher-hup-start-');
    const data = join(startDir.path, 'data');
    const first = new ServeProcess(data);
    try {
      // A log of 20,000 messages makes the replay take a while.
      await first.start();
      await first.request('PUT', '/queues/backlog', {});
      for (let batch = 0; batch < 20; batch++) {
        const messages = Array.from({ length: 1000 }, (_, i) => ({ body: `m${batch}-${i}-${'x'.repeat(200)}` }));
        assert.equal((await first.request('POST', '/queues/backlog/messages/batch', { messages })).status, 201);
      }
      await first.kill();

      const again = new ServeProcess(data);
      const started = again.startOrExit();
      await until(async () => /usher starting/.test(again.stdout), 'the starting line', 1);
      again.signal('SIGHUP');
      try {
        assert.equal(await started, true, `the broker died: exit ${again.exitCode}`);
        assert.match(again.stdout, /SIGHUP while starting: ignored/);
        assert.equal((await again.request('GET', '/queues/backlog')).json.stats.ready, 20_000);
      } finally {
        await again.kill();
      }
    } finally {
      await first.kill();
      startDir.remove();
    }
  });
});
