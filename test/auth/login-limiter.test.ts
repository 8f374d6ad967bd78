// Brute-force protection on a manual clock: slowed after a few failures,
// refused for a while after more, forgotten after a quiet spell, bounded.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { DEFAULT_LIMITER_POLICY, LoginLimiter } from '../../src/auth/login-limiter.js';
import { ManualClock } from '../helpers.js';

const policy = DEFAULT_LIMITER_POLICY;

describe('LoginLimiter', () => {
  it('lets the first attempts go at once, then slows them, doubling', () => {
    const clock = new ManualClock();
    const limiter = new LoginLimiter(policy, clock.read);
    for (let i = 0; i < policy.slowAfter; i++) {
      assert.deepEqual(limiter.check('10.0.0.1', 'bob'), { kind: 'go', delayMs: 0 });
      limiter.failed('10.0.0.1', 'bob');
    }
    assert.deepEqual(limiter.check('10.0.0.1', 'bob'), { kind: 'go', delayMs: 250 });
    limiter.failed('10.0.0.1', 'bob');
    assert.deepEqual(limiter.check('10.0.0.1', 'bob'), { kind: 'go', delayMs: 500 });
    // Another user from the same address is not slowed.
    assert.deepEqual(limiter.check('10.0.0.1', 'ann'), { kind: 'go', delayMs: 0 });
  });

  it('refuses the pair for lockMs after lockAfter failures, then forgives', () => {
    const clock = new ManualClock();
    const limiter = new LoginLimiter(policy, clock.read);
    for (let i = 0; i < policy.lockAfter; i++) limiter.failed('10.0.0.1', 'bob');
    const verdict = limiter.check('10.0.0.1', 'bob');
    assert.deepEqual(verdict, { kind: 'locked', retryAfterMs: policy.lockMs });
    // The same user from elsewhere is not locked out by the attacker.
    assert.equal(limiter.check('10.0.0.2', 'bob').kind, 'go');

    clock.advance(policy.lockMs + 1);
    assert.equal(limiter.check('10.0.0.1', 'bob').kind, 'go');
    clock.advance(policy.forgetAfterMs);
    assert.deepEqual(limiter.check('10.0.0.1', 'bob'), { kind: 'go', delayMs: 0 });
  });

  it('refuses an address that fails across many users (spraying)', () => {
    const limiter = new LoginLimiter(policy, new ManualClock().read);
    for (let i = 0; i < policy.lockAddressAfter; i++) limiter.failed('10.0.0.9', `user${i}`);
    assert.equal(limiter.check('10.0.0.9', 'someone-new').kind, 'locked');
    assert.equal(limiter.check('10.0.0.8', 'someone-new').kind, 'go');
  });

  it('clears a pair on success', () => {
    const limiter = new LoginLimiter(policy, new ManualClock().read);
    for (let i = 0; i < policy.slowAfter + 2; i++) limiter.failed('10.0.0.1', 'bob');
    limiter.succeeded('10.0.0.1', 'bob');
    assert.deepEqual(limiter.check('10.0.0.1', 'bob'), { kind: 'go', delayMs: 0 });
  });

  it('keeps a bounded table under a flood of addresses', () => {
    const limiter = new LoginLimiter(policy, new ManualClock().read);
    for (let i = 0; i < 60_000; i++) limiter.failed(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 'x');
    assert.ok(limiter.size <= 50_000, `size ${limiter.size}`);
  });
});
