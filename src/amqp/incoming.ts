// A publish as it is read: basic.publish, then its content header, then
// its body frames. A channel reads one at a time, so it keeps one object
// and fills it again for the next publish (one a publish cost ~80 bytes,
// and a parts array ~150 more for the one frame most bodies come in).

import type { BasicProperties } from './content.js';
import type { MethodOf } from './methods.js';

export interface Incoming {
  exchange: string;
  routingKey: string;
  mandatory: boolean;
  properties: BasicProperties;
  /** The first body frame: most bodies come in one. */
  body: Buffer | null;
  /** Every body frame, once more than one came. */
  parts: Buffer[] | null;
  received: number;
}

/** Read only: a publish's properties until its header frame comes. */
const NO_PROPERTIES: BasicProperties = Object.freeze({});

/** `spare` (a publish done with, see clearIncoming), or a new one, for `method`. */
export function startIncoming(
  spare: Incoming | null,
  method: MethodOf<'basic.publish'>,
): Incoming {
  if (spare === null) {
    return {
      exchange: method.exchange,
      routingKey: method.routingKey,
      mandatory: method.mandatory,
      properties: NO_PROPERTIES,
      body: null,
      parts: null,
      received: 0,
    };
  }
  spare.exchange = method.exchange;
  spare.routingKey = method.routingKey;
  spare.mandatory = method.mandatory;
  return spare;
}

/** Lets go of what a routed publish held, for startIncoming to fill again. */
export function clearIncoming(incoming: Incoming): void {
  incoming.properties = NO_PROPERTIES;
  incoming.body = null;
  incoming.parts = null;
  incoming.received = 0;
}

export function addBodyFrame(incoming: Incoming, frame: Buffer): void {
  if (incoming.body === null) incoming.body = frame;
  else (incoming.parts ??= [incoming.body]).push(frame);
  incoming.received += frame.length;
}

/** A publish's whole body: its one frame as it is, else the frames joined. */
export function bodyOf(incoming: Incoming): Buffer {
  if (incoming.parts !== null) return Buffer.concat(incoming.parts, incoming.received);
  return incoming.body ?? Buffer.alloc(0);
}
