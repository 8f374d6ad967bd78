// Logs in HTTP requests and AMQP connections against the user store, the
// same way for both: guest/guest from loopback while the guest is on, a
// user's password, or an API token. Every attempt goes through the login
// limiter first; every failure is counted per protocol (for metrics) and
// logged with the source address and user name, never the password.
//
// scrypt takes tens of milliseconds by design, which HTTP Basic would pay
// on every request. A password once verified is remembered (as an HMAC
// under a key that lives only in this process) together with the hash it
// was checked against, so a changed password or a deleted user is noticed
// on the next request.

import { createHmac, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';

import { LoginLockedError, UnauthenticatedError } from '../errors.js';
import { recordAuthFailure } from '../observe/observations.js';
import { LoginLimiter } from './login-limiter.js';
import { DEFAULT_COST, verifyPassword, type PasswordHash } from './password.js';
import { ALL_QUEUES, type Principal } from './permissions.js';
import { GUEST, UserStore, type StoredUser } from './user-store.js';

export type Credentials =
  | { kind: 'password'; user: string; password: string }
  | { kind: 'token'; token: string };

export type Protocol = 'http' | 'amqp';

export interface LoginSource {
  protocol: Protocol;
  /** The peer's address; undefined counts as not loopback. */
  address: string | undefined;
}

export interface AuthenticatorOptions {
  store: UserStore;
  /** Accept guest/guest from loopback; default true. */
  guest?: boolean;
  logger?: Logger;
  limiter?: LoginLimiter;
}

/** The guest: everything on every queue, as RabbitMQ's guest. */
const GUEST_PRINCIPAL: Principal = {
  name: GUEST,
  kind: 'guest',
  admin: true,
  permissions: ALL_QUEUES,
};

const MAX_REMEMBERED = 10_000;
const MAX_CONCURRENT_PER_ADDRESS = 8;

// Checked against when the user does not exist, so that an unknown name
// takes as long as a wrong password.
const DUMMY_HASH: PasswordHash = {
  algorithm: 'scrypt',
  ...DEFAULT_COST,
  salt: randomBytes(16).toString('base64'),
  hash: randomBytes(32).toString('base64'),
};

export class Authenticator {
  readonly store: UserStore;
  readonly guestEnabled: boolean;
  private readonly limiter: LoginLimiter;
  private readonly logger: Logger | undefined;
  private readonly failureCounts: Record<Protocol, number> = { http: 0, amqp: 0 };
  /** Where failures are also counted for /metrics and the alerts. */
  private observed: object | null = null;
  /** HMAC of user and password -> the user and the hash it was checked against. */
  private readonly remembered = new Map<string, { user: string; hash: string }>();
  private readonly rememberKey = randomBytes(32);
  /** Password checks under way, by the same key as `remembered`. */
  private readonly running = new Map<string, Promise<Principal | null>>();
  /** Distinct password checks under way per source address. */
  private readonly inFlight = new Map<string, number>();

  constructor(options: AuthenticatorOptions) {
    this.store = options.store;
    this.guestEnabled = options.guest ?? true;
    this.limiter = options.limiter ?? new LoginLimiter();
    this.logger = options.logger;
  }

  /**
   * Whether a principal logged in earlier still stands: its user has the
   * same password, rights and admin flag, its token is not revoked. Long
   * AMQP connections ask on every change of the store (onChange).
   */
  isCurrent(principal: Principal): boolean {
    if (principal.kind === 'guest') return this.guestEnabled;
    if (principal.kind === 'token') {
      const stored = this.store.token(principal.name.slice('token:'.length));
      return stored !== undefined && stored.id === principal.stamp;
    }
    const record = this.store.user(principal.name);
    return (
      record !== undefined &&
      record.password.hash === principal.stamp &&
      record.admin === principal.admin &&
      JSON.stringify(record.permissions) === JSON.stringify(principal.permissions)
    );
  }

  /**
   * Counts failed logins in `broker`'s observations too (usher_auth_failures_total,
   * the UsherAuthFailures alert). Each server of a broker calls this with
   * the same broker; it is idempotent, so a shared authenticator counts once.
   */
  reportTo(broker: object): void {
    this.observed = broker;
  }

  /** Failed logins since start, per protocol. */
  failures(): Readonly<Record<Protocol, number>> {
    return this.failureCounts;
  }

  /**
   * Answers who `credentials` belong to, or throws UnauthenticatedError
   * (wrong or unknown) or LoginLockedError (too many failures).
   */
  async login(credentials: Credentials, source: LoginSource): Promise<Principal> {
    // The guest on loopback, the common case in development: nothing to
    // guess (its password is public), so no limiter work per request.
    if (
      credentials.kind === 'password' &&
      credentials.user === GUEST &&
      credentials.password === GUEST &&
      this.guestEnabled &&
      isLoopback(source.address)
    ) {
      return GUEST_PRINCIPAL;
    }

    const user = credentials.kind === 'password' ? credentials.user : '(token)';
    const address = source.address ?? 'unknown';

    const verdict = this.limiter.check(address, user);
    if (verdict.kind === 'locked') {
      this.countFailure(source, user, 'locked out');
      throw new LoginLockedError(Math.ceil(verdict.retryAfterMs / 1000));
    }

    const known = credentials.kind === 'password' ? this.recall(credentials) : null;
    if (known !== null) return known;
    if (verdict.delayMs > 0) await sleep(verdict.delayMs);

    const principal = await this.verifyOnce(credentials, source, user);
    if (principal === null) {
      this.limiter.failed(address, user);
      this.countFailure(source, user, 'wrong credentials');
      throw new UnauthenticatedError(refusalText(credentials, source, this.guestEnabled));
    }
    this.limiter.succeeded(address, user);
    return principal;
  }

  /**
   * Identical attempts at the same time (a pool opening many connections)
   * share one scrypt run. Different attempts from one address at the same
   * time are capped: they would otherwise all run before the first
   * failure is counted, slipping past the limiter.
   */
  private async verifyOnce(
    credentials: Credentials,
    source: LoginSource,
    user: string,
  ): Promise<Principal | null> {
    if (credentials.kind === 'token' || credentials.user === GUEST) {
      return this.verify(credentials, source);
    }
    const key = this.rememberKeyOf(credentials);
    const running = this.running.get(key);
    if (running !== undefined) return running;

    const address = source.address ?? 'unknown';
    const inFlight = this.inFlight.get(address) ?? 0;
    if (inFlight >= MAX_CONCURRENT_PER_ADDRESS) {
      this.countFailure(source, user, 'too many logins at once');
      throw new LoginLockedError(1);
    }
    this.inFlight.set(address, inFlight + 1);
    const verifying = this.verify(credentials, source);
    this.running.set(key, verifying);
    try {
      return await verifying;
    } finally {
      this.running.delete(key);
      const left = (this.inFlight.get(address) ?? 1) - 1;
      if (left <= 0) this.inFlight.delete(address);
      else this.inFlight.set(address, left);
    }
  }

  private async verify(
    credentials: Credentials,
    source: LoginSource,
  ): Promise<Principal | null> {
    if (credentials.kind === 'token') {
      const found = this.store.findToken(credentials.token);
      if (found === null) return null;
      return {
        name: `token:${found.name}`,
        kind: 'token',
        admin: false,
        permissions: found.stored.permissions,
        stamp: found.stored.id,
      };
    }

    if (credentials.user === GUEST) {
      const allowed =
        this.guestEnabled && isLoopback(source.address) && credentials.password === GUEST;
      return allowed ? GUEST_PRINCIPAL : null;
    }

    const record = this.store.user(credentials.user);
    const matches = await verifyPassword(credentials.password, record?.password ?? DUMMY_HASH);
    // The store may have changed while scrypt ran: use the record as it is now.
    const now = this.store.user(credentials.user);
    if (!matches || record === undefined || now?.password.hash !== record.password.hash) {
      return null;
    }
    this.remember(credentials, now);
    return userPrincipal(credentials.user, now);
  }

  private recall(credentials: { user: string; password: string }): Principal | null {
    const key = this.rememberKeyOf(credentials);
    const known = this.remembered.get(key);
    if (known === undefined) return null;
    // Another password (or no user) since: check afresh.
    const record = this.store.user(known.user);
    if (record === undefined || record.password.hash !== known.hash) {
      this.remembered.delete(key);
      return null;
    }
    return userPrincipal(known.user, record);
  }

  private remember(credentials: { user: string; password: string }, record: StoredUser): void {
    if (this.remembered.size >= MAX_REMEMBERED) this.remembered.clear();
    this.remembered.set(this.rememberKeyOf(credentials), {
      user: credentials.user,
      hash: record.password.hash,
    });
  }

  private rememberKeyOf(credentials: { user: string; password: string }): string {
    return createHmac('sha256', this.rememberKey)
      .update(credentials.user)
      .update('\u0000')
      .update(credentials.password)
      .digest('base64');
  }

  private countFailure(source: LoginSource, user: string, reason: string): void {
    this.failureCounts[source.protocol] += 1;
    if (this.observed !== null) recordAuthFailure(this.observed, source.protocol);
    this.logger?.warn(
      { protocol: source.protocol, address: source.address, user, reason },
      'login failed',
    );
  }
}

function userPrincipal(name: string, record: StoredUser): Principal {
  return {
    name,
    kind: 'user',
    admin: record.admin,
    permissions: record.permissions,
    stamp: record.password.hash,
  };
}

function refusalText(
  credentials: Credentials,
  source: LoginSource,
  guestEnabled: boolean,
): string {
  if (credentials.kind === 'token') return 'the token is not valid';
  if (credentials.user === GUEST) {
    if (!guestEnabled) return 'the guest user is switched off on this broker';
    if (!isLoopback(source.address)) return 'guest is accepted from loopback only';
  }
  return `wrong user name or password for user "${credentials.user.slice(0, 64)}"`;
}

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return (
    address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.')
  );
}
