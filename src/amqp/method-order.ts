// A channel runs its methods in the order they came, as RabbitMQ does,
// also when a client sends several without waiting for each answer. A
// method that waits (a declare's journal write, a get's landing) holds the
// ones after it; publishes, acks, confirm.select and channel.close that
// come meanwhile wait their turn too (channel.ts). Most of the time nothing
// is pending, and those act at once, without a promise.
//
// Also here: how a fault becomes the AmqpError the channel closes with.

import { UsherError } from '../errors.js';
import { REPLY } from './constants.js';
import { AmqpError } from './errors.js';
import { type Method, type MethodName, methodInfo } from './methods.js';

export class MethodOrder {
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;

  /**
   * `stopped` says the channel closed: what is queued then does not run.
   * `fail` closes it for a method that threw, naming that method.
   */
  constructor(
    private readonly stopped: () => boolean,
    private readonly fail: (err: unknown, at?: MethodName) => void,
  ) {}

  /** Whether methods queued before now have not run to their end. */
  get pending(): boolean {
    return this.queued > 0;
  }

  /** Runs `run` once the methods before it are done; a failure names `at`. */
  run(run: () => Promise<void> | void, at?: MethodName): void {
    this.queued++;
    this.tail = this.tail
      .then(() => (this.stopped() ? undefined : run()))
      .catch((err: unknown) => this.fail(err, at))
      .finally(() => {
        this.queued--;
      });
  }
}

/**
 * Whether `method` answers with or acts on a queue's messages, so that
 * the publishes before it must have landed. Not the others (declares of
 * exchanges, binds, qos): with them waiting too, a client streaming
 * nowait declares between its publishes had each publish written and
 * synced alone, 20-30 times slower. A queue.declare that is not passive
 * answers a message count that may not hold publishes still being
 * written.
 */
export function seesMessages(method: Method): boolean {
  switch (method.name) {
    case 'queue.declare':
      return method.passive;
    case 'queue.purge':
    case 'queue.delete':
    case 'basic.get':
    case 'basic.consume':
    case 'basic.recover':
    case 'basic.recover-async':
      return true;
    default:
      return false;
  }
}

/**
 * The error a channel closes with for `err`: an AmqpError as it is, a
 * broker refusal in AMQP terms, anything else an internal error. It names
 * method `at` in its class-id and method-id when it names none, as
 * RabbitMQ names the method at fault (clients show it).
 */
export function channelErrorOf(err: unknown, at: MethodName | undefined): AmqpError {
  const error = err instanceof AmqpError ? err : amqpErrorOf(err);
  if (at === undefined || error.classId !== 0 || error.methodId !== 0) return error;
  const { classId, methodId } = methodInfo(at);
  return new AmqpError(error.replyCode, error.message, { classId, methodId, cause: error.cause });
}

function amqpErrorOf(err: unknown): AmqpError {
  if (err instanceof UsherError) {
    const code =
      err.status === 404
        ? REPLY.NOT_FOUND
        : err.status === 409 || err.status === 400 || err.status === 413
          ? REPLY.PRECONDITION_FAILED
          : err.status === 507 || err.status === 503
            ? REPLY.RESOURCE_ERROR
            : REPLY.INTERNAL_ERROR;
    return new AmqpError(code, err.message);
  }
  return new AmqpError(REPLY.INTERNAL_ERROR, 'internal error');
}
