// What a user or token may do: publish to, consume from and manage
// (declare, delete, purge, redrive, bind) queues whose names match glob
// patterns (glob.ts). Administrators may also manage users and tokens.
// HTTP (src/http/route-permissions.ts) and AMQP (src/amqp/access.ts) ask
// the same question here, so both protocols enforce the same rules.

import { anyGlobMatches } from './glob.js';

export type Action = 'publish' | 'consume' | 'manage';

export const ACTIONS: readonly Action[] = ['publish', 'consume', 'manage'];

export interface Permissions {
  publish: string[];
  consume: string[];
  manage: string[];
}

/** Whoever a request or connection was authenticated as. */
export interface Principal {
  /** A user's name, or `token:<name>` for an API token. */
  name: string;
  kind: 'user' | 'token' | 'guest';
  /** May add and delete users and tokens. */
  admin: boolean;
  permissions: Permissions;
  /** What the login was checked against (password hash, token id). */
  stamp?: string;
}

export const ALL_QUEUES: Permissions = {
  publish: ['*'],
  consume: ['*'],
  manage: ['*'],
};

export function noPermissions(): Permissions {
  return { publish: [], consume: [], manage: [] };
}

export function may(principal: Principal, action: Action, queue: string): boolean {
  return anyGlobMatches(principal.permissions[action], queue);
}

/** May do anything at all with `queue`: enough to see it listed. */
export function maySee(principal: Principal, queue: string): boolean {
  return ACTIONS.some((action) => may(principal, action, queue));
}

/** Longest pattern accepted; names are at most 200 characters anyway. */
export const MAX_PATTERN_LENGTH = 255;
export const MAX_PATTERNS = 64;

/**
 * Checks patterns given by an administrator; answers the first problem
 * as text, or null. Patterns are printable ASCII without spaces: the
 * characters queue names may hold, plus `*` and `?`.
 */
export function patternProblem(patterns: unknown): string | null {
  if (!Array.isArray(patterns)) return 'expected a list of patterns';
  if (patterns.length > MAX_PATTERNS) return `at most ${MAX_PATTERNS} patterns`;
  for (const pattern of patterns) {
    if (typeof pattern !== 'string' || pattern.length === 0) {
      return 'a pattern must be a non-empty string';
    }
    if (pattern.length > MAX_PATTERN_LENGTH) {
      return `pattern longer than ${MAX_PATTERN_LENGTH} characters`;
    }
    if (!/^[\x21-\x7e]+$/.test(pattern)) {
      return `pattern "${pattern}" has characters other than printable ASCII`;
    }
  }
  return null;
}
