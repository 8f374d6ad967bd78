// Logins as HTTP and AMQP see them: guest rules, passwords (remembered
// until changed), tokens, and the failure count and log.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import pino from 'pino';

import { Authenticator } from '../../src/auth/authenticator.js';
import { LoginLimiter, DEFAULT_LIMITER_POLICY } from '../../src/auth/login-limiter.js';
import { UserStore } from '../../src/auth/user-store.js';
import { ManualClock } from '../helpers.js';

const http = (address: string) => ({ protocol: 'http' as const, address });
const perms = { publish: ['orders.*'], consume: [], manage: [] };

function setup(guest = true) {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({}, { write: (line: string) => lines.push(JSON.parse(line)) });
  const store = UserStore.inMemory();
  const limiter = new LoginLimiter(DEFAULT_LIMITER_POLICY, new ManualClock().read);
  const auth = new Authenticator({ store, guest, logger, limiter });
  return { auth, store, lines };
}

describe('Authenticator', () => {
  it('accepts guest/guest from loopback only, and not when switched off', async () => {
    const { auth } = setup();
    const guest = { kind: 'password' as const, user: 'guest', password: 'guest' };
    assert.equal((await auth.login(guest, http('127.0.0.1'))).name, 'guest');
    assert.equal((await auth.login(guest, http('::1'))).name, 'guest');
    assert.equal((await auth.login(guest, http('::ffff:127.0.0.1'))).name, 'guest');
    await assert.rejects(auth.login(guest, http('10.1.2.3')), {
      code: 'UNAUTHENTICATED',
      message: /loopback only/,
    });
    await assert.rejects(auth.login(guest, http('::ffff:10.1.2.3')), { code: 'UNAUTHENTICATED' });

    const off = setup(false).auth;
    await assert.rejects(off.login(guest, http('127.0.0.1')), { message: /switched off/ });
  });

  it('checks passwords, and notices a changed password at once', async () => {
    const { auth, store, lines } = setup();
    await store.addUser('bob', 'old password', { permissions: perms });
    const old = { kind: 'password' as const, user: 'bob', password: 'old password' };
    const principal = await auth.login(old, http('10.0.0.1'));
    assert.deepEqual(principal.permissions, perms);
    assert.equal(principal.admin, false);
    // Remembered: a second login gives the same answer.
    assert.equal((await auth.login(old, http('10.0.0.1'))).name, 'bob');

    await store.setPassword('bob', 'new password');
    await assert.rejects(auth.login(old, http('10.0.0.1')), { code: 'UNAUTHENTICATED' });
    await store.deleteUser('bob');
    const renewed = { kind: 'password' as const, user: 'bob', password: 'new password' };
    await assert.rejects(auth.login(renewed, http('10.0.0.1')), { code: 'UNAUTHENTICATED' });

    assert.equal(auth.failures().http, 2);
    const failures = lines.filter((line) => line.msg === 'login failed');
    assert.equal(failures.length, 2);
    for (const line of failures) {
      assert.equal(line.address, '10.0.0.1');
      assert.equal(line.user, 'bob');
      assert.ok(!JSON.stringify(line).includes('password"'), 'no password field');
      assert.ok(!JSON.stringify(line).includes('old password'), 'no password value');
    }
  });

  it('accepts current tokens and refuses revoked or forged ones', async () => {
    const { auth, store } = setup();
    const { token } = await store.createToken('ci', perms);
    const principal = await auth.login({ kind: 'token', token }, http('10.0.0.1'));
    assert.equal(principal.name, 'token:ci');
    assert.equal(principal.kind, 'token');
    await assert.rejects(auth.login({ kind: 'token', token: 'usher_nope' }, http('10.0.0.1')), {
      code: 'UNAUTHENTICATED',
    });
    await store.revokeToken('ci');
    await assert.rejects(auth.login({ kind: 'token', token }, http('10.0.0.1')), {
      code: 'UNAUTHENTICATED',
    });
  });

  it('locks a user out of one address after repeated failures, right password or not', async () => {
    const { auth, store } = setup();
    await store.addUser('eve', 'the password', { permissions: perms });
    const wrong = { kind: 'password' as const, user: 'eve', password: 'guess....' };
    // The limiter's delays run on real time; keep to the undelayed ones,
    // then push the pair over the limit directly.
    for (let i = 0; i < DEFAULT_LIMITER_POLICY.slowAfter; i++) {
      await assert.rejects(auth.login(wrong, http('10.6.6.6')), { code: 'UNAUTHENTICATED' });
    }
    const limiter = (auth as unknown as { limiter: LoginLimiter }).limiter;
    for (let i = DEFAULT_LIMITER_POLICY.slowAfter; i < DEFAULT_LIMITER_POLICY.lockAfter; i++) {
      limiter.failed('10.6.6.6', 'eve');
    }
    const right = { kind: 'password' as const, user: 'eve', password: 'the password' };
    await assert.rejects(auth.login(right, http('10.6.6.6')), { code: 'LOGIN_LOCKED' });
    assert.equal((await auth.login(right, http('10.7.7.7'))).name, 'eve');
  });

  it('tells whether an earlier login still stands', async () => {
    const { auth, store } = setup();
    await store.addUser('kim', 'kim password', { permissions: perms });
    const kim = await auth.login({ kind: 'password', user: 'kim', password: 'kim password' }, http('10.0.0.1'));
    const { token } = await store.createToken('t1', perms);
    const t1 = await auth.login({ kind: 'token', token }, http('10.0.0.1'));
    assert.equal(auth.isCurrent(kim), true);
    assert.equal(auth.isCurrent(t1), true);

    await store.revokeToken('t1');
    assert.equal(auth.isCurrent(t1), false);
    assert.equal(auth.isCurrent(kim), true, 'an unrelated change leaves kim alone');
    await store.setPassword('kim', 'new kim password');
    assert.equal(auth.isCurrent(kim), false);
  });
});
