// A publish's plan: for each message, whether admission sheds it,
// whether it is a duplicate, whether the queue's limits refuse it, and
// else the record that stores it. Nothing changes in a refused whole
// batch; the broker writes the records and then enqueues them.

import { LoadRefusalError, type OverloadedError, QueueFullError } from '../errors.js';
import type { QueueEngine } from '../engine/queue.js';
import type { Newcomer } from '../engine/overflow.js';
import type { Message } from '../engine/types.js';
import type { PublishedRecord } from '../storage/records.js';
import { randomIds } from '../util/random-id.js';
import type { AdmissionController } from './admission.js';
import { refusedMessage } from './dead-letter.js';
import { isLogged } from './durability.js';
import { NO_HEADERS, shorterTtl } from './messages.js';
import type { PublishAnswer, PublishInput } from './types.js';

/** What a publish will do: each message's answer, the records to write,
 * the ids to remember for deduplication, and how many were duplicates. */
export interface PublishPlan {
  answers: PublishAnswer[];
  records: PublishedRecord[];
  remember: string[];
  duplicates: number;
  /** Newcomers refused under reject-publish-dlx, to dead-letter. */
  refused: Message[];
  /** With `wholeBatch`: the refusal to throw once those are written. */
  batchRefusal?: LoadRefusalError;
}

/**
 * Decides each message's fate; changes nothing in a refused whole batch.
 * Plain loops and no per-message arrays beyond the answers and records:
 * this runs for every message published.
 */
export function planPublish(
  engine: QueueEngine,
  inputs: PublishInput[],
  now: number,
  wholeBatch: boolean,
  admission: AdmissionController | null,
  allocateSeq: () => number,
): PublishPlan {
  const answers: PublishAnswer[] = new Array<PublishAnswer>(inputs.length);
  // Messages still in the running have no answer yet, only an id; the
  // queue's limits then decide which of them are stored.
  let candidates = 0;
  let seenInBatch: Set<string> | null = null;
  let duplicates = 0;
  let shed: LoadRefusalError | undefined;
  // The last refusal, handed back to the controller: messages of one
  // priority share one error (see AdmissionController.refusal).
  let lastRefusal: OverloadedError | null = null;
  const waiting = engine.counts.ready + engine.counts.delayed;
  const ids = new Array<string>(inputs.length);
  // Messages in the running without an id of their own: they get theirs
  // together (randomIds), sharing text with no other publish's ids.
  let unnamed = 0;

  for (let at = 0; at < inputs.length; at++) {
    const input = inputs[at];
    const refusal: OverloadedError | null | undefined = admission?.refusal(
      input.priority ?? 0,
      engine.settings.sheddable,
      waiting,
      lastRefusal,
    );
    if (refusal) {
      answers[at] = refusal;
      shed ??= refusal;
      lastRefusal = refusal;
      continue;
    }
    const given = input.id;
    if (given !== undefined) {
      if (seenInBatch?.has(given) || engine.isDuplicate(given, now)) {
        duplicates++;
        answers[at] = { id: given, duplicate: true };
        continue;
      }
      if (engine.settings.dedupWindowMs > 0) (seenInBatch ??= new Set()).add(given);
    }
    if (given === undefined) unnamed++;
    else ids[at] = given;
    candidates++;
  }

  // Refused whole before the limits reserve room or displace anything.
  if (wholeBatch && shed !== undefined) throw shed;
  if (unnamed > 0) nameTheUnnamed(inputs, answers, ids, unnamed, isLogged(engine));

  const limits = admitNewcomers(engine, inputs, answers, candidates, wholeBatch);
  // At most one a candidate, made at its size: grown from empty, it was
  // reallocated as it grew, each time larger than the batch needed.
  const records = new Array<PublishedRecord>(candidates);
  let stored = 0;
  const remember: string[] = [];
  const refused: Message[] = [];
  const { maxLength, maxBytes, overflow, messageTtlMs } = engine.settings;
  for (let at = 0, k = 0; at < inputs.length; at++) {
    if (answers[at] !== undefined) continue;
    const limit = limits === null ? null : limits[k++];
    if (limit !== null) {
      const value = limit === 'max-length' ? maxLength : maxBytes;
      answers[at] = new QueueFullError(engine.name, limit, value ?? 0);
      if (overflow === 'reject-publish-dlx') {
        refused.push(refusedMessage(inputs[at], ids[at], now, messageTtlMs));
      }
      continue;
    }
    answers[at] = { id: ids[at], duplicate: false };
    if (inputs[at].id !== undefined) remember.push(ids[at]);
    records[stored++] = publishedRecord(allocateSeq, engine, inputs[at], ids[at], now);
  }
  records.length = stored;

  const batchRefusal = wholeBatch
    ? answers.find((answer) => answer instanceof LoadRefusalError)
    : undefined;
  return { answers, records, remember, duplicates, refused, batchRefusal };
}

/** Gives each message in the running without an id one made for it. */
function nameTheUnnamed(
  inputs: PublishInput[],
  answers: PublishAnswer[],
  ids: string[],
  unnamed: number,
  forTheLog: boolean,
): void {
  const made = randomIds(unnamed, forTheLog);
  for (let at = 0, k = 0; k < unnamed; at++) {
    if (answers[at] === undefined && inputs[at].id === undefined) ids[at] = made[k++];
  }
}

/**
 * The queue's limits for the messages still without an answer, in
 * order: null for each admitted, or null for all when the queue admits
 * everyone (no limits, or drop-oldest), without a newcomer list.
 */
function admitNewcomers(
  engine: QueueEngine,
  inputs: PublishInput[],
  answers: PublishAnswer[],
  candidates: number,
  wholeBatch: boolean,
): ReturnType<QueueEngine['admit']> | null {
  if (engine.admitsAll()) {
    let bytes = 0;
    for (let at = 0; at < inputs.length; at++) {
      if (answers[at] === undefined) bytes += inputs[at].body.length;
    }
    engine.reserve(candidates, bytes);
    return null;
  }
  const newcomers: Newcomer[] = [];
  for (let at = 0; at < inputs.length; at++) {
    if (answers[at] !== undefined) continue;
    newcomers.push({ priority: inputs[at].priority ?? 0, bytes: inputs[at].body.length });
  }
  return engine.admit(newcomers, wholeBatch);
}

function publishedRecord(
  allocateSeq: () => number,
  engine: QueueEngine,
  input: PublishInput,
  id: string,
  now: number,
): PublishedRecord {
  const ttl = shorterTtl(input.ttlMs, engine.settings.messageTtlMs);
  return {
    type: 'published',
    seq: allocateSeq(),
    queue: engine.name,
    id,
    priority: input.priority ?? 0,
    group: input.group ?? null,
    headers: input.headers ?? NO_HEADERS,
    body: input.body,
    publishedAt: now,
    availableAt: now + (input.delayMs ?? 0),
    expiresAt: ttl === null ? null : now + ttl,
    failures: 0,
    madeId: input.id === undefined,
  };
}
