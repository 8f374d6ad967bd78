// The publisher-confirm bookkeeping of a channel (src/amqp/confirms.ts):
// one `multiple` ack per batch of answered tags, nacks at once, tags that
// wait for several queues; and, against a plain Map model of the same
// rules, long runs that wrap and grow its ring.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ConfirmTracker, type ConfirmSend } from '../../src/amqp/confirms.js';

type Sent = Parameters<ConfirmSend>[0];

function tracker(): { confirms: ConfirmTracker; sent: Sent[] } {
  const sent: Sent[] = [];
  return { confirms: new ConfirmTracker((method) => sent.push(method)), sent };
}

const ack = (deliveryTag: number, multiple = true): Sent => ({ name: 'basic.ack', deliveryTag, multiple });
/** An ack that answers one tag alone: multiple=false, as RabbitMQ sends it. */
const single = (deliveryTag: number): Sent => ack(deliveryTag, false);
const nack = (deliveryTag: number): Sent =>
  ({ name: 'basic.nack', deliveryTag, multiple: false, requeue: false });

test('tags answered together get one multiple ack, in order only', () => {
  const { confirms, sent } = tracker();
  const [a, b, c] = [confirms.open(), confirms.open(), confirms.open()];
  assert.deepEqual([a, b, c], [1, 2, 3]);

  confirms.settle(b, true);
  confirms.settle(c, true);
  confirms.sendAcks();
  assert.deepEqual(sent, [], 'tag 1 still waits, so nothing above it is answered');

  confirms.settle(a, true);
  confirms.sendAcks();
  assert.deepEqual(sent, [ack(3)]);
  confirms.sendAcks();
  assert.deepEqual(sent, [ack(3)], 'nothing twice');
});

test('a nack goes out at once, after the acks before it', () => {
  const { confirms, sent } = tracker();
  const [a, b, c] = [confirms.open(), confirms.open(), confirms.open()];
  confirms.settle(a, true);
  confirms.settle(b, false);
  assert.deepEqual(sent, [single(1), nack(2)]);

  confirms.settle(b, true);
  confirms.settle(b, false);
  confirms.settle(c, true);
  confirms.sendAcks();
  assert.deepEqual(sent, [single(1), nack(2), single(3)], 'a nacked tag is settled for good');
});

test('a tag routed to several queues waits for each', () => {
  const { confirms, sent } = tracker();
  const tag = confirms.open();
  confirms.waitFor(tag, 3);
  confirms.settle(tag, true);
  confirms.settle(tag, true);
  confirms.sendAcks();
  assert.deepEqual(sent, []);
  confirms.settle(tag, true);
  confirms.sendAcks();
  assert.deepEqual(sent, [single(1)]);
});

// Bunny 2.19 adds its tag offset twice to a multiple ack after it
// reconnects, and waited for confirms for ever (new user).
test('an ack that answers one tag says multiple=false; a nacked tag between does not count', () => {
  const { confirms, sent } = tracker();
  const [a, b, c, d] = [confirms.open(), confirms.open(), confirms.open(), confirms.open()];
  confirms.settle(a, true);
  confirms.sendAcks();
  confirms.settle(b, false);
  confirms.settle(c, true);
  confirms.sendAcks();
  confirms.settle(d, true);
  confirms.sendAcks();
  assert.deepEqual(sent, [single(1), nack(2), single(3), single(4)]);
});

test('tags that are not out, or already answered, are ignored', () => {
  const { confirms, sent } = tracker();
  confirms.settle(1, true);
  confirms.settle(7, false);
  const tag = confirms.open();
  confirms.settle(tag, true);
  confirms.sendAcks();
  confirms.settle(tag, false);
  confirms.waitFor(tag, 2);
  assert.deepEqual(sent, [single(1)]);
});

/** The same rules on Maps, as the channel kept them before the ring. */
class MapModel {
  readonly sent: Sent[] = [];
  #last = 0;
  #upTo = 0;
  readonly #waiting = new Map<number, number>();
  readonly #settled = new Map<number, boolean>();

  open(queues: number): number {
    this.#waiting.set(++this.#last, queues);
    return this.#last;
  }

  settle(tag: number, ok: boolean): void {
    if (tag > this.#last || tag <= this.#upTo || this.#settled.has(tag)) return;
    const remaining = this.#waiting.get(tag)!;
    if (!ok) {
      this.sendAcks();
      this.#waiting.delete(tag);
      this.#settled.set(tag, false);
      this.sent.push(nack(tag));
    } else if (remaining > 1) {
      this.#waiting.set(tag, remaining - 1);
    } else {
      this.#waiting.delete(tag);
      this.#settled.set(tag, true);
    }
  }

  sendAcks(): void {
    let lastAck = 0;
    let acked = 0;
    for (let next = this.#upTo + 1; this.#settled.has(next); next++) {
      if (this.#settled.get(next) === true) {
        lastAck = next;
        acked++;
      }
      this.#settled.delete(next);
      this.#upTo = next;
    }
    if (lastAck > 0) this.sent.push(ack(lastAck, acked > 1));
  }
}

test('long runs answer as the Map model does, across wraps and growth', () => {
  // A small deterministic generator: the same run every time.
  let seed = 12345;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };

  for (let run = 0; run < 20; run++) {
    const { confirms, sent } = tracker();
    const model = new MapModel();
    const out: Array<{ tag: number; left: number }> = [];
    for (let step = 0; step < 20_000; step++) {
      const choice = random();
      // Sometimes a burst of publishes, so thousands wait and the ring grows.
      if (choice < 0.45 || out.length === 0) {
        const burst = random() < 0.01 ? 3000 : 1;
        for (let i = 0; i < burst; i++) {
          const queues = 1 + Math.floor(random() * 3 * (random() < 0.1 ? 1 : 0));
          const tag = confirms.open();
          confirms.waitFor(tag, queues);
          assert.equal(model.open(queues), tag);
          out.push({ tag, left: queues });
        }
      } else if (choice < 0.95) {
        // Mostly the oldest, sometimes any: confirms land nearly in order.
        const at = random() < 0.7 ? 0 : Math.floor(random() * out.length);
        const ok = random() < 0.97;
        const entry = out[at];
        confirms.settle(entry.tag, ok);
        model.settle(entry.tag, ok);
        if (!ok || --entry.left === 0) out.splice(at, 1);
      } else {
        confirms.sendAcks();
        model.sendAcks();
      }
    }
    confirms.sendAcks();
    model.sendAcks();
    assert.deepEqual(sent, model.sent, `run ${run}`);
  }
});
