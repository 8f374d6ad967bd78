// First start of a broker on a data folder: the user file does not exist
// yet, so an administrator is created, named `admin`, with the password
// from USHER_ADMIN_PASSWORD or, failing that, a generated one that the
// caller prints once. Later starts find the file and change nothing.

import type { Logger } from 'pino';

import { Authenticator } from './authenticator.js';
import { LoginLimiter } from './login-limiter.js';
import { generatePassword } from './password.js';
import { ALL_QUEUES } from './permissions.js';
import { UserStore } from './user-store.js';

export const BOOTSTRAP_ADMIN = 'admin';
export const ADMIN_PASSWORD_ENV = 'USHER_ADMIN_PASSWORD';

export interface OpenedAuth {
  authenticator: Authenticator;
  /**
   * Adds the administrator on a first start; answers the password when
   * it was generated (show it, once), else null. Called once the broker
   * listens, so a start that fails (a port in use) creates nobody whose
   * password would be lost.
   */
  bootstrap(): Promise<string | null>;
}

export async function openAuth(options: {
  dataDir: string;
  guest: boolean;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
}): Promise<OpenedAuth> {
  const { store, created } = await UserStore.open(options.dataDir);
  const authenticator = new Authenticator({
    store,
    guest: options.guest,
    logger: options.logger.child({ component: 'auth' }),
    limiter: new LoginLimiter(),
  });

  async function bootstrap(): Promise<string | null> {
    if (!created || store.userCount > 0) return null;
    const given = (options.env ?? process.env)[ADMIN_PASSWORD_ENV];
    const generated = given === undefined || given === '' ? generatePassword() : null;
    await store.addUser(BOOTSTRAP_ADMIN, generated ?? (given as string), {
      admin: true,
      permissions: ALL_QUEUES,
    });
    options.logger.info(
      { user: BOOTSTRAP_ADMIN, from: generated === null ? ADMIN_PASSWORD_ENV : 'generated' },
      'created the bootstrap administrator',
    );
    return generated;
  }

  return { authenticator, bootstrap };
}
