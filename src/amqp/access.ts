// AMQP permission checks: the same rules as HTTP (src/auth/permissions.ts)
// applied to the methods that touch queues and exchanges, answered as
// RabbitMQ does, with channel.close 403 ACCESS_REFUSED. Exchanges are
// named by the same patterns as queues: declaring, deleting or binding
// one needs manage on its name.
//
//   queue.declare / bind / unbind / purge / delete   manage on the queue
//   queue.declare passive                            any permission on it
//   exchange.declare / delete                        manage on the exchange
//   exchange.bind / unbind                           manage on the destination
//   basic.consume / get                              consume on the queue
//   basic.publish                                    publish on every queue
//                                                    the message routes to

import { may, maySee, type Action, type Principal } from '../auth/permissions.js';
import { REPLY } from './constants.js';
import { AmqpError } from './errors.js';

export function checkAccess(
  principal: Principal | null,
  action: Action | 'see',
  kind: 'queue' | 'exchange',
  name: string,
  method: { classId: number; methodId: number },
): void {
  // A channel exists only after login, so principal is set; fail closed.
  const allowed =
    principal !== null &&
    (action === 'see' ? maySee(principal, name) : may(principal, action, name));
  if (allowed) return;
  const user = principal?.name ?? '';
  throw new AmqpError(
    REPLY.ACCESS_REFUSED,
    `access to ${kind} '${name}' in vhost '/' refused for user '${user}'` +
      (action === 'see' ? '' : ` (needs ${action})`),
    method,
  );
}

// Class and method ids for the reply (0-9-1 spec, section 1.4).
export const METHOD_IDS = {
  queueDeclare: { classId: 50, methodId: 10 },
  queueBind: { classId: 50, methodId: 20 },
  queueUnbind: { classId: 50, methodId: 50 },
  queuePurge: { classId: 50, methodId: 30 },
  queueDelete: { classId: 50, methodId: 40 },
  exchangeDeclare: { classId: 40, methodId: 10 },
  exchangeDelete: { classId: 40, methodId: 20 },
  exchangeBind: { classId: 40, methodId: 30 },
  exchangeUnbind: { classId: 40, methodId: 40 },
  basicConsume: { classId: 60, methodId: 20 },
  basicGet: { classId: 60, methodId: 70 },
  basicPublish: { classId: 60, methodId: 40 },
} as const;
