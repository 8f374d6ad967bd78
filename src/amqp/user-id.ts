// The user-id property vouches for who published a message, so RabbitMQ
// refuses a publish whose user-id is not the user the connection logged
// in as (channel.close 406, its own wording below). Usher does the same;
// RabbitMQ's `impersonator` tag, which lifts the check, has no Usher
// counterpart yet, so no user may publish as another.

import type { Principal } from '../auth/permissions.js';
import { REPLY } from './constants.js';
import { AmqpError } from './errors.js';

const BASIC_PUBLISH = { classId: 60, methodId: 40 };

/** 406 unless `userId` is absent or names the connection's user. */
export function checkUserId(userId: string | undefined, principal: Principal | null): void {
  if (userId === undefined) return;
  // A channel exists only after login, so principal is set; fail closed.
  const actual = principal?.name ?? '';
  if (principal !== null && userId === actual) return;
  throw new AmqpError(REPLY.PRECONDITION_FAILED,
    `user_id property set to '${userId}' but authenticated user was '${actual}'`,
    BASIC_PUBLISH);
}
