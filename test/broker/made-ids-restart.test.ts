// Ids and headers read back after a restart equal what was published, for
// ids the broker made (log format 3 keeps their bytes from randomId's
// table, util/random-id.ts, and flags them, codec.ts) mixed with
// producers' ids shaped like them, in two brokers of one process sharing
// that table and the codec's kept headers and queue name. Messages
// dead-lettered and redriven keep their ids too, and only producers' ids
// are deduplicated after the restart, a made id nacked with a reason
// (logged again without the flag) included.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import type { PublishInput } from '../../src/broker/types.js';
import { openBroker, seededRandom, tempDir, text } from '../helpers.js';

const dirs: ReturnType<typeof tempDir>[] = [];
const brokers: Broker[] = [];

afterEach(async () => {
  for (const broker of brokers.splice(0)) await broker.close();
  for (const dir of dirs.splice(0)) dir.remove();
});

async function open(path: string): Promise<Broker> {
  const broker = await openBroker(path);
  brokers.push(broker);
  return broker;
}

/** Headers of the kinds that test the codec's kept headers: equal, near misses, numeric keys. */
function headersOf(random: () => number, n: number): Record<string, string> | undefined {
  switch (Math.floor(random() * 7)) {
    case 0:
      return undefined;
    case 1:
      return { kind: 'a', route: 'x' };
    case 2:
      return { kind: 'a', route: 'y' };
    case 3:
      return { route: 'x', kind: 'a' };
    case 4:
      return { b: 'one', 1: 'numeric', 0: 'zero' };
    case 5:
      return JSON.parse(`{"__proto__": "p${n % 3}", "kind": "a"}`) as Record<string, string>;
    default:
      return { kind: 'a', route: 'x', n: String(n % 2) };
  }
}

interface Sent {
  id: string;
  body: string;
  headers: Record<string, string>;
}

/** Reads every message of `queue` once, by id. */
async function readAll(broker: Broker, queue: string, count: number) {
  const got = new Map<string, { body: string; headers: Record<string, string> }>();
  while (got.size < count) {
    const batch = await broker.receive(queue, { max: 1000, waitMs: 0 });
    if (batch.length === 0) break;
    for (const message of batch) {
      got.set(message.id, { body: message.body.toString(), headers: { ...message.headers } });
    }
  }
  return got;
}

function ownEntries(headers: Record<string, string>): [string, string][] {
  return Object.keys(headers).map((key) => [key, headers[key]]);
}

describe('ids made by the broker across a restart', () => {
  it('reads back every id, body and header as published, in two brokers at once', async () => {
    const random = seededRandom(11);
    const paths = [tempDir(), tempDir()];
    dirs.push(...paths);
    let [a, b] = [await open(paths[0].path), await open(paths[1].path)];
    for (const broker of [a, b]) {
      await broker.createQueue('q', {});
      await broker.createQueue(`q-${'n'.repeat(150)}`, {});
    }
    const queues = ['q', `q-${'n'.repeat(150)}`];
    const sent: Map<string, Sent>[][] = [queues.map(() => new Map()), queues.map(() => new Map())];
    const madeBy: Set<string>[] = [new Set(), new Set()];
    const givenTo: Set<string>[] = [new Set(), new Set()];

    for (let round = 0; round < 40; round++) {
      for (const [which, broker] of [a, b].entries()) {
        const other = 1 - which;
        const q = Math.floor(random() * 2);
        const inputs: PublishInput[] = [];
        for (let k = 0; k < 100; k++) {
          const n = round * 100 + k;
          const headers = headersOf(random, n);
          const choice = random();
          // A producer may send an id the other broker made, or any UUID.
          let id: string | undefined;
          const others = [...madeBy[other]];
          if (choice < 0.1 && others.length > 0) id = others[Math.floor(random() * others.length)];
          else if (choice < 0.2) id = randomUUID();
          if (id !== undefined && givenTo[which].has(id)) id = undefined;
          if (id !== undefined) givenTo[which].add(id);
          inputs.push({ id, body: text(`${which}-${n}`), headers });
        }
        const answers = await broker.publish(queues[q], inputs);
        answers.forEach((answer, k) => {
          assert.equal(answer.duplicate, false);
          if (inputs[k].id === undefined) madeBy[which].add(answer.id);
          else assert.equal(answer.id, inputs[k].id);
          sent[which][q].set(answer.id, {
            id: answer.id,
            body: String(inputs[k].body),
            headers: inputs[k].headers ?? {},
          });
        });
      }
    }

    // A copy taken while open is a crash: replayed in full, no checkpoint.
    const crashed = [tempDir(), tempDir()];
    dirs.push(...crashed);
    crashed.forEach((copy, which) => {
      cpSync(paths[which].path, copy.path, { recursive: true });
      // The lock names this process, which is alive: a crash leaves no live owner.
      rmSync(join(copy.path, 'usher.lock'));
    });
    for (const broker of brokers.splice(0)) await broker.close();

    for (const [when, dirsOf] of [['stopped', paths], ['crashed', crashed]] as const) {
      [a, b] = [await open(dirsOf[0].path), await open(dirsOf[1].path)];
      for (const [which, broker] of [a, b].entries()) {
        for (const [q, queue] of queues.entries()) {
          const expected = sent[which][q];
          const got = await readAll(broker, queue, expected.size);
          const wrong = [...expected.values()].filter((message) => {
            const back = got.get(message.id);
            return (
              back === undefined ||
              back.body !== message.body ||
              JSON.stringify(ownEntries(back.headers)) !==
                JSON.stringify(ownEntries(message.headers))
            );
          });
          const where = `${when}: broker ${which} queue ${q}: ${wrong.length} wrong`;
          assert.deepEqual(wrong.slice(0, 3), [], where);
          assert.equal(got.size, expected.size);
        }
      }

      // Only producers' ids are deduplicated after the restart.
      for (const [which, broker] of [a, b].entries()) {
        const ids = [...sent[which][0].keys()];
        const made = ids.filter((id) => madeBy[which].has(id)).slice(0, 50);
        const given = ids.filter((id) => !madeBy[which].has(id)).slice(-50);
        const again = [...made, ...given].map((id) => ({ id, body: text(id) }));
        const answers = await broker.publish('q', again);
        const duplicates = answers.map((answer) => answer.duplicate);
        const expected = [...made.map(() => false), ...given.map(() => true)];
        assert.deepEqual(duplicates, expected, when);
      }
      for (const broker of brokers.splice(0)) await broker.close();
    }
  });

  it('keeps made ids of dead-lettered and redriven messages', async () => {
    const path = tempDir();
    dirs.push(path);
    let broker = await open(path.path);
    await broker.createQueue('dead', {});
    await broker.createQueue('work', { deadLetter: 'dead' });
    const inputs = Array.from({ length: 300 }, (_, n) => ({
      body: text(`m-${n}`),
      headers: n % 2 === 0 ? { kind: 'a' } : { kind: 'b' },
    }));
    const answers = await broker.publish('work', inputs);
    const bodyOf = new Map(answers.map((answer, n) => [answer.id, `m-${n}`]));

    const received = await broker.receive('work', { max: 200, waitMs: 0 });
    for (const message of received) {
      await broker.nack('work', message.receipt, { requeue: false, reason: 'test' });
    }
    const back = received.slice(0, 50).map((message) => message.id);
    assert.deepEqual(await broker.redrive('dead', { ids: back }), { moved: 50 });

    await broker.close();
    brokers.splice(0);
    broker = await open(path.path);
    const work = await readAll(broker, 'work', 150);
    const dead = await readAll(broker, 'dead', 150);
    assert.equal(work.size, 150);
    assert.equal(dead.size, 150);
    for (const [id, message] of [...work, ...dead]) assert.equal(message.body, bodyOf.get(id), id);
    for (const id of back) assert.ok(work.has(id), `redriven ${id}`);
  });

  // The nack's record of the message with its new headers carries no
  // flag: the ledger must not take it for a producer's publish.
  it('does not deduplicate a made id after a nack that gave a reason', async () => {
    const path = tempDir();
    dirs.push(path);
    let broker = await open(path.path);
    await broker.createQueue('work', {});
    const inputs = [1, 2, 3].map((n) => ({ body: text(`m-${n}`) }));
    const answers = await broker.publish('work', inputs);
    const [first] = await broker.receive('work', { max: 1, waitMs: 0 });
    await broker.nack('work', first.receipt, { requeue: true, reason: 'boom' });

    await broker.close();
    brokers.splice(0);
    broker = await open(path.path);
    const again = await broker.publish('work', answers.map(({ id }) => ({ id, body: text(id) })));
    assert.deepEqual(again.map((answer) => answer.duplicate), [false, false, false]);
  });
});
