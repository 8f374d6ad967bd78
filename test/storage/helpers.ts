// Shared fixtures for the storage tests: temp dirs, a recording logger,
// sample records, a store opener that collects the replay, a tiny model
// of message state, and a StoreIo that fails on request.

import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { type StoreIo, nodeIo } from '../../src/storage/io.js';
import {
  EARLY_START_BYTES,
  LogStore,
  type LogStoreOptions,
  type StoreLogger,
} from '../../src/storage/log-store.js';
import type { LogRecord, PublishedRecord } from '../../src/storage/records.js';
import { RETIRED_SUFFIX } from '../../src/storage/segment-file.js';

export async function withTempDir(
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'usher-storage-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface LogEntry {
  obj: Record<string, unknown>;
  msg: string;
}

export interface RecordingLogger extends StoreLogger {
  infos: LogEntry[];
  warnings: LogEntry[];
  errors: LogEntry[];
}

export function recordingLogger(): RecordingLogger {
  const logger: RecordingLogger = {
    infos: [],
    warnings: [],
    errors: [],
    info: (obj, msg) => void logger.infos.push({ obj: { ...obj }, msg }),
    warn: (obj, msg) => void logger.warnings.push({ obj: { ...obj }, msg }),
    error: (obj, msg) => void logger.errors.push({ obj: { ...obj }, msg }),
  };
  return logger;
}

/** A ticket event of about 460 bytes once encoded, like the hot path. */
export function ticket(seq: number, queue = 'tickets'): PublishedRecord {
  return {
    type: 'published',
    seq,
    queue,
    id: `ticket-${String(seq).padStart(8, '0')}-7f3c9a2e-4b1d-4e8a`,
    priority: 5,
    group: `customer-${seq % 17}`,
    headers: {
      'content-type': 'application/json',
      'x-source': 'helpdesk',
      'x-trace-id': '4bf92f3577b34da6a3ce929d0e0e4736',
    },
    body: Buffer.from(
      JSON.stringify({
        event: 'ticket.updated',
        ticket: seq,
        status: 'open',
        assignee: 'agent-42',
        subject: 'Printer on floor 3 prints everything twice, even this',
        tags: ['hardware', 'printer', 'urgent'],
        updatedAt: '2024-11-05T10:32:11.123Z',
      }),
    ),
    publishedAt: 1_730_800_000_000 + seq,
    availableAt: 1_730_800_000_000 + seq,
    expiresAt: null,
    failures: 0,
  };
}

/**
 * One round of steady traffic: ten tickets published and the previous
 * round's ten settled, in one append as a busy broker would batch them.
 * Returns this round's seqs, for the next round to settle.
 */
/**
 * A ticket whose body alone fills a batch (EARLY_START_BYTES): its batch
 * starts at once and may take any sync slot (in-flight.ts).
 */
export function fullBatchTicket(seq: number): PublishedRecord {
  return { ...ticket(seq), body: Buffer.alloc(EARLY_START_BYTES, seq) };
}

export async function settleRound(store: LogStore, previous: number[]): Promise<number[]> {
  const seqs = Array.from({ length: 10 }, () => store.allocateSeq());
  const records: LogRecord[] = seqs.map((seq) => ticket(seq));
  if (previous.length > 0) records.push({ type: 'settled', seqs: previous });
  await store.append(records);
  return seqs;
}

/** What a writer of settleRound traffic had confirmed when it was stopped. */
export interface ConfirmedTraffic {
  published: Set<number>;
  settled: Set<number>;
  /** The seqs the last confirmed append published. */
  lastRound: number[];
}

/**
 * Opens the log in `dir` after a crash or a power cut of settleRound
 * traffic and checks it against what was confirmed: every settle stays
 * settled, every publish not settled is there, nothing is damaged before
 * the tail, and no retired (.dead) segment is left.
 */
export async function assertConfirmedKept(
  dir: string,
  books: ConfirmedTraffic,
  options: Partial<LogStoreOptions>,
  context: string,
): Promise<void> {
  const { store, replayed } = await openStore(dir, options);
  const model = MessageModel.of(replayed);
  const stats = store.stats();
  await store.close();

  // The append after the last confirmed one may have landed unanswered:
  // it settled that one's publishes. Either outcome is right; gone, they
  // count as settled.
  for (const seq of books.lastRound) if (!model.messages.has(seq)) books.settled.add(seq);
  const back = [...books.settled].filter((seq) => model.messages.has(seq));
  assert.deepEqual(back.slice(0, 10), [], `${context}: settled messages came back`);
  const lost = [...books.published]
    .filter((seq) => !books.settled.has(seq) && !model.messages.has(seq));
  assert.deepEqual(lost.slice(0, 10), [], `${context}: confirmed messages lost`);
  assert.equal(stats.corruptRegions, 0, `${context}: damage before the tail`);
  const left = (await readdir(dir)).filter((name) => name.endsWith(RETIRED_SUFFIX));
  assert.deepEqual(left, [], `${context}: .dead files left`);
}

export interface OpenedStore {
  store: LogStore;
  replayed: LogRecord[];
  logger: RecordingLogger;
}

export async function openStore(
  dir: string,
  options: Partial<LogStoreOptions> = {},
): Promise<OpenedStore> {
  const replayed: LogRecord[] = [];
  const logger = recordingLogger();
  const store = await LogStore.open(
    {
      dir,
      logger,
      snapshotMessage: () => undefined,
      ...options,
    },
    (record) => replayed.push(record),
  );
  return { store, replayed, logger };
}

/** Opens, collects the replay and closes again. */
export async function replayOf(dir: string): Promise<OpenedStore> {
  const opened = await openStore(dir);
  await opened.store.close();
  return opened;
}

/**
 * Message state as the broker would rebuild it: the latest `published`
 * copy of each live message with later changes applied.
 */
export class MessageModel {
  readonly messages = new Map<number, PublishedRecord>();

  /** The model after `records`, applied in order (a replay). */
  static of(records: readonly LogRecord[]): MessageModel {
    const model = new MessageModel();
    for (const record of records) model.apply(record);
    return model;
  }

  apply(record: LogRecord): void {
    switch (record.type) {
      case 'published':
        this.messages.set(record.seq, record);
        break;
      case 'settled':
        for (const seq of record.seqs) this.messages.delete(seq);
        break;
      case 'retried': {
        const message = this.messages.get(record.seq);
        if (message === undefined) break;
        this.messages.set(record.seq, {
          ...message,
          failures: record.failures,
          availableAt: record.availableAt,
        });
        break;
      }
      case 'moved': {
        const message = this.messages.get(record.seq);
        if (message === undefined) break;
        this.messages.set(record.seq, {
          ...message,
          queue: record.queue,
          headers: record.headers,
          failures: record.failures,
          availableAt: record.availableAt,
          expiresAt: record.expiresAt,
        });
        break;
      }
      case 'queue-deleted':
        // It ends what is still in the queue, as the ledger does.
        for (const [seq, message] of this.messages) {
          if (message.queue === record.name) this.messages.delete(seq);
        }
        break;
      default:
        break;
    }
  }
}

type FaultyOp = 'open' | 'writev' | 'fdatasync' | 'ftruncate';

interface PlannedFault {
  op: FaultyOp;
  code: string;
  /** writev only: really write half the buffers before failing. */
  partial: boolean;
}

/** nodeIo, except for the faults planned with failNext. */
export class FaultyIo implements StoreIo {
  readonly #planned: PlannedFault[] = [];
  calls: Record<FaultyOp, number> = {
    open: 0,
    writev: 0,
    fdatasync: 0,
    ftruncate: 0,
  };

  failNext(op: FaultyOp, code: string, partial = false): void {
    this.#planned.push({ op, code, partial });
  }

  async open(path: string, flags: string): Promise<number> {
    this.calls.open++;
    this.#maybeFail('open');
    return nodeIo.open(path, flags);
  }

  async writev(
    fd: number,
    buffers: readonly Buffer[],
    position: number,
  ): Promise<number> {
    this.calls.writev++;
    const fault = this.#take('writev');
    if (fault === undefined) return nodeIo.writev(fd, buffers, position);
    if (fault.partial) {
      const half = Buffer.concat(buffers);
      await nodeIo.writev(fd, [half.subarray(0, half.length >> 1)], position);
    }
    throw errno(fault.code, 'write');
  }

  async fdatasync(fd: number): Promise<void> {
    this.calls.fdatasync++;
    this.#maybeFail('fdatasync');
    return nodeIo.fdatasync(fd);
  }

  async ftruncate(fd: number, length: number): Promise<void> {
    this.calls.ftruncate++;
    this.#maybeFail('ftruncate');
    return nodeIo.ftruncate(fd, length);
  }

  close(fd: number): Promise<void> {
    return nodeIo.close(fd);
  }

  unlink = nodeIo.unlink;
  rename = nodeIo.rename;
  fsyncDir = nodeIo.fsyncDir;

  #maybeFail(op: FaultyOp): void {
    const fault = this.#take(op);
    if (fault !== undefined) throw errno(fault.code, op);
  }

  #take(op: FaultyOp): PlannedFault | undefined {
    const index = this.#planned.findIndex((fault) => fault.op === op);
    if (index < 0) return undefined;
    return this.#planned.splice(index, 1)[0];
  }
}

function errno(code: string, syscall: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(
    `${code}: simulated failure, ${syscall}`,
  );
  err.code = code;
  err.syscall = syscall;
  return err;
}

const RECENT_IDS = { maxIds: 1000, defaultWindowMs: Number.MAX_SAFE_INTEGER };

/**
 * Options for a store that checkpoints after 64 KiB of log (the checkpoint
 * tests); `extra` replaces any of them, `checkpoints` as a whole.
 */
export function checkpointingOptions(
  dir: string,
  extra: Partial<LogStoreOptions> = {},
): LogStoreOptions {
  return {
    dir,
    logger: recordingLogger(),
    snapshotMessage: () => undefined,
    recentIds: RECENT_IDS,
    checkpoints: { minBytes: 64 * 1024, ratio: 1 },
    ...extra,
  };
}

/** The promise's state after the I/O callbacks of this turn. */
export async function settledYet(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(() => (settled = true), () => (settled = true));
  await nextTurn();
  await nextTurn();
  return settled;
}

/** Waits, a few ms at a time and 5 s at most, until `ready()` holds; then says whether it did. */
export async function eventually(ready: () => boolean): Promise<boolean> {
  for (let tries = 0; tries < 1_000 && !ready(); tries++) await sleep(5);
  return ready();
}
