// Users and API tokens, kept in `<data dir>/users.json`. The file is
// replaced whole on every change (temp file, fsync, rename, fsync of the
// folder), so a crash leaves either the old file or the new one. Passwords
// are stored as scrypt hashes (password.ts); a token is stored as the
// SHA-256 of its secret, which is shown once when it is created and never
// again. Changes are made one at a time, and the new state replaces the
// old only once it is on disk.
//
//   token on the wire:  usher_<id>_<secret>
//                       id: 12 base64url chars, the lookup key
//                       secret: 43 base64url chars (256 bits)

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import {
  InvalidArgumentError,
  LastAdminError,
  StoreUnavailableError,
  TokenExistsError,
  TokenNotFoundError,
  UserExistsError,
  UserNotFoundError,
} from '../errors.js';
import { MAX_PASSWORD_BYTES, hashPassword, type PasswordHash } from './password.js';
import { patternProblem, type Permissions } from './permissions.js';

export interface StoredUser {
  password: PasswordHash;
  admin: boolean;
  permissions: Permissions;
  created: string;
}

export interface StoredToken {
  id: string;
  /** SHA-256 of the secret, hex. */
  secretHash: string;
  permissions: Permissions;
  created: string;
}

interface State {
  version: 1;
  users: Record<string, StoredUser>;
  tokens: Record<string, StoredToken>;
}

/** What `user list` shows: never the hash. */
export interface UserInfo {
  name: string;
  admin: boolean;
  permissions: Permissions;
  created: string;
}

export interface TokenInfo {
  name: string;
  permissions: Permissions;
  created: string;
}

export const USERS_FILE = 'users.json';

/** Reserved: the built-in loopback user, never stored. */
export const GUEST = 'guest';

const NAME_PATTERN = /^[A-Za-z0-9._@-]{1,64}$/;

export class UserStore {
  private state: State;
  /** Changes wait for the one before them. */
  private tail: Promise<unknown> = Promise.resolve();
  private readonly listeners = new Set<() => void>();

  private constructor(
    /** null keeps everything in memory (tests, embedded brokers). */
    private readonly file: string | null,
    state: State,
  ) {
    this.state = state;
  }

  /** An empty store that is never written anywhere. */
  static inMemory(): UserStore {
    return new UserStore(null, emptyState());
  }

  /**
   * Opens `<dataDir>/users.json`; `created` tells whether it did not exist
   * yet (the caller then adds the bootstrap admin).
   */
  static async open(dataDir: string): Promise<{ store: UserStore; created: boolean }> {
    const file = join(dataDir, USERS_FILE);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return { store: new UserStore(file, emptyState()), created: true };
    }
    return { store: new UserStore(file, parseState(text, file)), created: false };
  }

  // --- reading ----------------------------------------------------------

  user(name: string): StoredUser | undefined {
    return Object.hasOwn(this.state.users, name) ? this.state.users[name] : undefined;
  }

  token(name: string): StoredToken | undefined {
    return Object.hasOwn(this.state.tokens, name) ? this.state.tokens[name] : undefined;
  }

  /** Calls `listener` after every change; answers how to stop. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get userCount(): number {
    return Object.keys(this.state.users).length;
  }

  listUsers(): UserInfo[] {
    return Object.entries(this.state.users)
      .map(([name, { admin, permissions, created }]) => ({ name, admin, permissions, created }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  listTokens(): TokenInfo[] {
    return Object.entries(this.state.tokens)
      .map(([name, { permissions, created }]) => ({ name, permissions, created }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The token's name when `token` is a current token, else null. */
  findToken(token: string): { name: string; stored: StoredToken } | null {
    const parts = /^usher_([A-Za-z0-9_-]{12})_([A-Za-z0-9_-]{43})$/.exec(token);
    if (parts === null) return null;
    const [, id, secret] = parts;
    const presented = sha256(secret);
    for (const [name, stored] of Object.entries(this.state.tokens)) {
      if (stored.id !== id) continue;
      const expected = Buffer.from(stored.secretHash, 'hex');
      if (timingSafeEqual(presented, expected)) return { name, stored };
      return null;
    }
    return null;
  }

  // --- changing ---------------------------------------------------------

  async addUser(
    name: string,
    password: string,
    options: { admin?: boolean; permissions: Permissions },
  ): Promise<UserInfo> {
    checkName(name, 'name');
    checkPassword(password);
    checkPermissions(options.permissions);
    const hash = await hashPassword(password);
    return this.change((state) => {
      if (Object.hasOwn(state.users, name)) throw new UserExistsError(name);
      const user: StoredUser = {
        password: hash,
        admin: options.admin ?? false,
        permissions: copyPermissions(options.permissions),
        created: new Date().toISOString(),
      };
      state.users[name] = user;
      return { name, admin: user.admin, permissions: user.permissions, created: user.created };
    });
  }

  async deleteUser(name: string): Promise<void> {
    await this.change((state) => {
      if (!Object.hasOwn(state.users, name)) throw new UserNotFoundError(name);
      refuseToRemoveLastAdmin(state, name);
      delete state.users[name];
    });
  }

  async setPassword(name: string, password: string): Promise<void> {
    checkPassword(password);
    const hash = await hashPassword(password);
    await this.change((state) => {
      const user = Object.hasOwn(state.users, name) ? state.users[name] : undefined;
      if (user === undefined) throw new UserNotFoundError(name);
      state.users[name] = { ...user, password: hash };
    });
  }

  /**
   * Replaces a user's permissions, and its admin flag when given. AMQP
   * connections of the user then close (Authenticator.isCurrent), as a
   * changed password does.
   */
  async setPermissions(
    name: string,
    options: { admin?: boolean; permissions: Permissions },
  ): Promise<UserInfo> {
    checkPermissions(options.permissions);
    return this.change((state) => {
      const user = Object.hasOwn(state.users, name) ? state.users[name] : undefined;
      if (user === undefined) throw new UserNotFoundError(name);
      if (options.admin === false) refuseToRemoveLastAdmin(state, name);
      const changed: StoredUser = {
        ...user,
        admin: options.admin ?? user.admin,
        permissions: copyPermissions(options.permissions),
      };
      state.users[name] = changed;
      const { admin, permissions, created } = changed;
      return { name, admin, permissions, created };
    });
  }

  /** Creates a token; answers it in full, the only time it is shown. */
  async createToken(name: string, permissions: Permissions): Promise<{ token: string }> {
    checkName(name, 'name');
    checkPermissions(permissions);
    const id = randomBytes(9).toString('base64url');
    const secret = randomBytes(32).toString('base64url');
    await this.change((state) => {
      if (Object.hasOwn(state.tokens, name)) throw new TokenExistsError(name);
      state.tokens[name] = {
        id,
        secretHash: sha256(secret).toString('hex'),
        permissions: copyPermissions(permissions),
        created: new Date().toISOString(),
      };
    });
    return { token: `usher_${id}_${secret}` };
  }

  async revokeToken(name: string): Promise<void> {
    await this.change((state) => {
      if (!Object.hasOwn(state.tokens, name)) throw new TokenNotFoundError(name);
      delete state.tokens[name];
    });
  }

  /**
   * Applies `edit` to a copy of the state, writes the copy, and only then
   * makes it current: a failed write changes nothing.
   */
  private change<T>(edit: (state: State) => T): Promise<T> {
    const run = this.tail.then(async () => {
      const next = cloneState(this.state);
      const result = edit(next);
      if (this.file !== null) await writeAtomically(this.file, JSON.stringify(next, null, 2));
      this.state = next;
      for (const listener of [...this.listeners]) listener();
      return result;
    });
    this.tail = run.catch(() => {});
    return run;
  }
}

// --- helpers --------------------------------------------------------------

/** Refuses to take away the only administrator: no one could add another. */
function refuseToRemoveLastAdmin(state: State, name: string): void {
  const admins = Object.entries(state.users).filter(([, user]) => user.admin);
  if (admins.length === 1 && admins[0][0] === name) throw new LastAdminError(name);
}

function emptyState(): State {
  return { version: 1, users: Object.create(null), tokens: Object.create(null) };
}

// Objects without a prototype: a user named `__proto__` is just a user.
function cloneState(state: State): State {
  const copy = structuredClone(state);
  return {
    version: 1,
    users: Object.assign(Object.create(null), copy.users),
    tokens: Object.assign(Object.create(null), copy.tokens),
  };
}

function parseState(text: string, file: string): State {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON; restore it from a backup`, { cause: err });
  }
  const state = parsed as Partial<State> | null;
  if (
    state === null ||
    typeof state !== 'object' ||
    state.version !== 1 ||
    typeof state.users !== 'object' ||
    typeof state.tokens !== 'object'
  ) {
    throw new Error(`${file} is not a version 1 Usher user file`);
  }
  // A hand-edited entry would otherwise fail each request that reads it
  // with a 500; refused here, as a file that is not JSON is.
  for (const [name, user] of Object.entries(state.users)) {
    if (!isStoredUser(user)) {
      throw new Error(`${file}: user "${name}" is malformed; restore it from a backup`);
    }
  }
  for (const [name, token] of Object.entries(state.tokens)) {
    if (!isStoredToken(token)) {
      throw new Error(`${file}: token "${name}" is malformed; restore it from a backup`);
    }
  }
  return {
    version: 1,
    users: Object.assign(Object.create(null), state.users),
    tokens: Object.assign(Object.create(null), state.tokens),
  };
}

// A failed write (disk full, I/O error) answers 503 STORE_UNAVAILABLE
// naming the file, not a 500; the half-written temp file is removed.
function isStoredUser(user: unknown): user is StoredUser {
  const candidate = user as Partial<StoredUser> | null;
  return (
    typeof candidate === 'object' && candidate !== null &&
    typeof candidate.admin === 'boolean' &&
    typeof candidate.password === 'object' && candidate.password !== null &&
    typeof candidate.password.salt === 'string' && typeof candidate.password.hash === 'string' &&
    isPermissions(candidate.permissions)
  );
}

function isStoredToken(token: unknown): token is StoredToken {
  const candidate = token as Partial<StoredToken> | null;
  return (
    typeof candidate === 'object' && candidate !== null &&
    typeof candidate.id === 'string' && typeof candidate.secretHash === 'string' &&
    isPermissions(candidate.permissions)
  );
}

function isPermissions(permissions: unknown): boolean {
  const candidate = permissions as Partial<Permissions> | null;
  return (
    typeof candidate === 'object' && candidate !== null &&
    (['publish', 'consume', 'manage'] as const).every(
      (action) => Array.isArray(candidate[action]) &&
        candidate[action].every((pattern) => typeof pattern === 'string'),
    )
  );
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const temp = `${file}.tmp`;
  try {
    const handle = await open(temp, 'w', 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw new StoreUnavailableError(`cannot write ${file}: ${(err as Error).message}`, err);
  }
  await rename(temp, file);
  // The rename itself is durable only once the folder is synced.
  const folder = await open(dirname(file), 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function checkName(name: string, field: string): void {
  if (name === GUEST) {
    throw new InvalidArgumentError(field, `"${GUEST}" is the built-in loopback user`);
  }
  if (!NAME_PATTERN.test(name)) {
    throw new InvalidArgumentError(
      field,
      `name "${name.slice(0, 80)}" must be 1 to 64 letters, digits, '.', '_', '@' or '-'`,
    );
  }
}

function checkPassword(password: string): void {
  if (typeof password !== 'string' || password.length < 8) {
    throw new InvalidArgumentError('password', 'a password needs at least 8 characters');
  }
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) {
    throw new InvalidArgumentError(
      'password',
      `a password may have at most ${MAX_PASSWORD_BYTES} bytes`,
    );
  }
}

function checkPermissions(permissions: Permissions): void {
  for (const action of ['publish', 'consume', 'manage'] as const) {
    const problem = patternProblem(permissions[action]);
    if (problem !== null) {
      throw new InvalidArgumentError(`permissions.${action}`, problem);
    }
  }
}

function copyPermissions(permissions: Permissions): Permissions {
  return {
    publish: [...permissions.publish],
    consume: [...permissions.consume],
    manage: [...permissions.manage],
  };
}
