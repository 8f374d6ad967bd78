// Users and API tokens of a running broker (the /admin routes), for
// administrators and for `usher user ...` and `usher token ...`. Separate
// from UsherClient: services publish and consume, operators administer.
//
//   const admin = connectAdmin('http://127.0.0.1:8080', {
//     user: 'admin', password: process.env.USHER_ADMIN_PASSWORD,
//   });
//   await admin.addUser('billing', 'a long password', {
//     permissions: { publish: ['billing.*'], consume: ['billing.*'] },
//   });

import type { Permissions } from '../auth/permissions.js';
import type { TokenInfo, UserInfo } from '../auth/user-store.js';
import { Transport, type Credentials } from './transport.js';

// The broker's own shapes, as the /admin routes answer them.
export type { Permissions, TokenInfo, UserInfo };

export interface Whoami {
  name: string;
  kind: 'user' | 'token' | 'guest';
  admin: boolean;
  permissions: Permissions;
}

export function connectAdmin(url: string, credentials: Credentials = {}): UsherAdmin {
  return new UsherAdmin(new Transport(url, credentials));
}

export class UsherAdmin {
  readonly #transport: Transport;

  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /**
   * Starts a check of every sealed log segment for damage, in the
   * background; false if one runs already. Results: health().store.
   */
  async scrub(): Promise<boolean> {
    const answer = await this.#transport.request<{ started: boolean }>('POST', '/admin/scrub');
    return answer.data.started;
  }

  async whoami(): Promise<Whoami> {
    return (await this.#transport.request<Whoami>('GET', '/admin/whoami')).data;
  }

  async listUsers(): Promise<UserInfo[]> {
    const answer = await this.#transport.request<{ users: UserInfo[] }>('GET', '/admin/users');
    return answer.data.users;
  }

  async addUser(
    name: string,
    password: string,
    options: { admin?: boolean; permissions?: Partial<Permissions> } = {},
  ): Promise<UserInfo> {
    const answer = await this.#transport.request<UserInfo>('PUT', `/admin/users/${part(name)}`, {
      password,
      ...options,
    });
    return answer.data;
  }

  async deleteUser(name: string): Promise<void> {
    await this.#transport.request('DELETE', `/admin/users/${part(name)}`);
  }

  async setPassword(name: string, password: string): Promise<void> {
    await this.#transport.request('PUT', `/admin/users/${part(name)}/password`, { password });
  }

  /** Replaces the user's permissions (lists left out become empty), and admin if given. */
  async setPermissions(
    name: string,
    permissions: Partial<Permissions>,
    options: { admin?: boolean } = {},
  ): Promise<UserInfo> {
    const answer = await this.#transport.request<UserInfo>(
      'PUT',
      `/admin/users/${part(name)}/permissions`,
      { permissions, ...options },
    );
    return answer.data;
  }

  async listTokens(): Promise<TokenInfo[]> {
    const answer = await this.#transport.request<{ tokens: TokenInfo[] }>('GET', '/admin/tokens');
    return answer.data.tokens;
  }

  /** Answers the token itself: the only time the broker shows it. */
  async createToken(name: string, permissions: Partial<Permissions> = {}): Promise<string> {
    const answer = await this.#transport.request<{ token: string }>(
      'PUT',
      `/admin/tokens/${part(name)}`,
      { permissions },
    );
    return answer.data.token;
  }

  async revokeToken(name: string): Promise<void> {
    await this.#transport.request('DELETE', `/admin/tokens/${part(name)}`);
  }
}

function part(name: string): string {
  return encodeURIComponent(name);
}
