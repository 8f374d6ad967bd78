// `usher serve` with users: the bootstrap admin printed once, `usher user`
// and `usher token` against the running broker (seen at once), the CLI's
// --user/--password and USHER_TOKEN, and --no-guest.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  eventually,
  runUsher,
  startUsher,
  type UsherServer,
} from '../client/usher-process.js';
import { tempDir } from '../helpers.js';

let server: UsherServer;
let adminPassword: string;

before(async () => {
  server = await startUsher(['--no-guest']);
  // stderr and stdout are separate pipes: the password may come after the
  // listening line that startUsher waits for.
  adminPassword = await eventually(() => {
    const match = /created user "admin" with password (\S+)/.exec(server.log());
    assert.ok(match, `no generated password in:\n${server.log()}`);
    return match[1];
  });
});

after(async () => {
  await server?.stop();
});

const asAdmin = () => ({ USHER_USER: 'admin', USHER_PASSWORD: adminPassword });

describe('usher user and token', () => {
  it('prints the generated admin password once, to stderr only, never into the log', () => {
    const logLines = server
      .log()
      .split('\n')
      .filter((line) => line.startsWith('{'));
    assert.ok(logLines.length > 0);
    assert.ok(!logLines.some((line) => line.includes(adminPassword)));
    const file = readFileSync(join(server.dataDir, 'users.json'), 'utf8');
    assert.ok(!file.includes(adminPassword));
  });

  it('refuses the CLI without credentials when the guest is off', async () => {
    const result = await runUsher(['queue', 'list'], { url: server.url });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /credentials required/);
  });

  it('adds a user whose permissions apply at once, then deletes it', async () => {
    const env = asAdmin();
    const added = await runUsher(
      ['user', 'add', 'billing', '--new-password', 'billing password',
        '--publish', 'billing.*', '--consume', 'billing.*', '--manage', 'billing.*'],
      { url: server.url, env },
    );
    assert.equal(added.code, 0, added.stderr);

    const listed = await runUsher(['user', 'list'], { url: server.url, env });
    assert.match(listed.stdout, /billing\s+no\s+billing\.\*\s+billing\.\*\s+billing\.\*/);
    assert.match(listed.stdout, /admin\s+yes/);

    const billing = ['--user', 'billing', '--password', 'billing password'];
    const create = await runUsher([...billing, 'queue', 'create', 'billing.in'], { url: server.url });
    assert.equal(create.code, 0, create.stderr);
    const refused = await runUsher([...billing, 'queue', 'create', 'orders'], { url: server.url });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /may not manage queue "orders"/);

    const changed = await runUsher(
      ['user', 'passwd', 'billing', '--new-password', 'another password'],
      { url: server.url, env },
    );
    assert.equal(changed.code, 0, changed.stderr);
    const old = await runUsher([...billing, 'queue', 'list'], { url: server.url });
    assert.equal(old.code, 1);
    assert.match(old.stderr, /wrong user name or password/);

    const deleted = await runUsher(['user', 'delete', 'billing'], { url: server.url, env });
    assert.equal(deleted.code, 0, deleted.stderr);
  });

  it('replaces a user\'s permissions with set-permissions, effective at once', async () => {
    const env = asAdmin();
    const added = await runUsher(
      ['user', 'add', 'ops', '--new-password', 'ops password', '--publish', 'ops.*'],
      { url: server.url, env },
    );
    assert.equal(added.code, 0, added.stderr);
    const ops = ['--user', 'ops', '--password', 'ops password'];
    const before = await runUsher([...ops, 'queue', 'create', 'ops.q'], { url: server.url });
    assert.equal(before.code, 1);
    assert.match(before.stderr, /may not manage queue "ops.q"/);

    const changed = await runUsher(
      ['user', 'set-permissions', 'ops', '--manage', 'ops.*', '--consume', 'ops.*'],
      { url: server.url, env },
    );
    assert.equal(changed.code, 0, changed.stderr);
    const created = await runUsher([...ops, 'queue', 'create', 'ops.q'], { url: server.url });
    assert.equal(created.code, 0, created.stderr);
    const listed = await runUsher(['user', 'list'], { url: server.url, env });
    assert.match(listed.stdout, /ops\s+no\s+-\s+ops\.\*\s+ops\.\*/, 'publish was not replaced');

    const none = await runUsher(['user', 'set-permissions', 'ops', '--none'], { url: server.url, env });
    assert.equal(none.code, 0, none.stderr);
    const refused = await runUsher([...ops, 'queue', 'delete', 'ops.q'], { url: server.url });
    assert.equal(refused.code, 1);

    const mixed = await runUsher(
      ['user', 'set-permissions', 'ops', '--none', '--publish', 'x'],
      { url: server.url, env },
    );
    assert.equal(mixed.code, 2);
    const missing = await runUsher(
      ['user', 'set-permissions', 'nobody-here', '--publish', 'x'],
      { url: server.url, env },
    );
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nobody-here/);
  });

  it('creates a token printed once, usable through USHER_TOKEN, then revoked', async () => {
    const env = asAdmin();
    const created = await runUsher(
      ['token', 'create', 'ci', '--publish', 'ci.*', '--manage', 'ci.*'],
      { url: server.url, env },
    );
    assert.equal(created.code, 0, created.stderr);
    const token = created.stdout.trim();
    assert.match(token, /^usher_/);

    const use = await runUsher(['queue', 'create', 'ci.jobs'], {
      url: server.url,
      env: { USHER_TOKEN: token },
    });
    assert.equal(use.code, 0, use.stderr);
    const listed = await runUsher(['token', 'list'], { url: server.url, env });
    assert.ok(!listed.stdout.includes(token));

    assert.equal((await runUsher(['token', 'revoke', 'ci'], { url: server.url, env })).code, 0);
    const after = await runUsher(['queue', 'list'], { url: server.url, env: { USHER_TOKEN: token } });
    assert.equal(after.code, 1);
    assert.match(after.stderr, /token is not valid/);
  });

  it('refuses user administration to a non-admin', async () => {
    await runUsher(
      ['user', 'add', 'plain', '--new-password', 'plain password', '--consume', 'x'],
      { url: server.url, env: asAdmin() },
    );
    const result = await runUsher(['user', 'list'], {
      url: server.url,
      env: { USHER_USER: 'plain', USHER_PASSWORD: 'plain password' },
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /not an administrator/);
  });
});

describe('usher serve bootstrap from USHER_ADMIN_PASSWORD', () => {
  it('creates admin with the given password and prints none', async () => {
    process.env.USHER_ADMIN_PASSWORD = 'given admin password';
    let other: UsherServer | undefined;
    try {
      other = await startUsher(['--no-guest']);
      assert.ok(!other.log().includes('created user "admin" with password'));
      const result = await runUsher(['user', 'list'], {
        url: other.url,
        env: { USHER_USER: 'admin', USHER_PASSWORD: 'given admin password' },
      });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /admin\s+yes/);
    } finally {
      delete process.env.USHER_ADMIN_PASSWORD;
      await other?.stop();
    }
  });

  it('refuses to start with a password too short, saying why', async () => {
    const dir = tempDir('usher-bootstrap-');
    const result = await runUsher(['serve', '--data', dir.path, '--port', '0', '--amqp-port', '-1'], {
      env: { USHER_ADMIN_PASSWORD: 'short' },
    });
    dir.remove();
    assert.equal(result.code, 1);
    assert.match(result.stderr, /cannot create the administrator: a password needs at least 8 characters/);
  });
});
