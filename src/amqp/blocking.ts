// connection.blocked / connection.unblocked (RabbitMQ's extension, which
// clients announce with the `connection.blocked` capability in their
// client-properties): Usher tells such clients when admission control is
// at critical, so publishers can pause instead of being nacked, and again
// when it is not.
//
// Unlike RabbitMQ, Usher keeps reading a blocked connection: at critical
// it still accepts the highest priorities (--critical-min-priority), and
// refuses the rest one by one (basic.nack), so a client that ignores the
// notice loses nothing silently either way.

import type { AdmissionController, Level, Reason } from '../broker/admission.js';
import { plainValue, type FieldTable } from './field-table.js';
import type { Method } from './methods.js';

/** True when the client's capabilities table says connection.blocked. */
export function supportsBlocked(clientProperties: FieldTable): boolean {
  return hasCapability(clientProperties, 'connection.blocked');
}

/** True when the client's capabilities table (in client-properties) says `name`. */
export function hasCapability(clientProperties: FieldTable, name: string): boolean {
  const capabilities = clientProperties.get('capabilities');
  if (capabilities === undefined) return false;
  const table = plainValue(capabilities) as Record<string, unknown> | null;
  return table !== null && typeof table === 'object' && table[name] === true;
}

/**
 * Sends blocked at once if the broker is at critical, then on every
 * change in and out of it. Answers the function that stops watching.
 */
export function watchAdmission(
  admission: AdmissionController | null,
  send: (method: Method) => void,
): () => void {
  if (admission === null) return () => {};
  let blocked = false;
  const follow = (level: Level, reason: Reason) => {
    const critical = level === 'critical';
    if (critical === blocked) return;
    blocked = critical;
    const text = `Usher at critical (${reason}): only high priorities accepted`;
    send(
      critical ? { name: 'connection.blocked', reason: text } : { name: 'connection.unblocked' },
    );
  };
  follow(admission.current.level, admission.current.reason);
  return admission.onChange(follow);
}
