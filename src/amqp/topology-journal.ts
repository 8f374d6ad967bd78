// Durable exchanges and bindings on disk: a snapshot, `exchanges.json`,
// and a journal of the changes made since, `exchanges.journal`. A bind
// appends one record and waits for one fdatasync (binds made together
// share it), so it costs the same with 10 bindings or 100,000; rewriting
// the whole snapshot for each made 10,000 binds take minutes. When the
// journal has grown past the snapshot's size (and a floor), the next
// save writes a new snapshot instead and starts a new journal, so the
// rewrites cost O(1) a change on average and a restart reads both files
// once.
//
// Why a file of its own and not records in the message log: the log's
// segments are reclaimed as messages are acked, so topology records there
// would have to be carried forward by its compaction, and the log belongs
// to the broker, which knows nothing of AMQP exchanges.
//
// The journal: frames of [u32 length][u32 CRC-32C of the payload]
// [payload], big-endian, each payload UTF-8 JSON. The first is the header
// {"generation": G}; the rest are records (snapshot.ts, encodeChange).
// The snapshot carries the generation of the journal that follows it:
//
//   - journal generation = snapshot's: replay every record after it;
//   - lower: a new snapshot was written and the crash came before the
//     new journal; the snapshot holds it all, the journal is old news;
//   - higher, or a record that does not fit: the files do not belong
//     together; the journal is set aside and the snapshot's state kept.
//
// A frame cut short at the end is a write the crash interrupted, never
// confirmed: it is dropped. Nothing is ever appended after a bad or
// unknown tail: the next save writes a snapshot and a new journal
// instead, as it does after a failed write (disk full), whose records
// may be half on disk. A failed save is a StoreUnavailableError (506 on
// the channel); the change stays made in memory, as in RabbitMQ, and the
// next save keeps it.

import { open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';

import { StoreUnavailableError } from '../errors.js';
import { ExchangeTable, type QueueLookup } from '../routing/exchanges.js';
import { encodeChange } from '../routing/snapshot.js';
import { crc32c } from '../storage/crc32c.js';
import { setAside, writeAtomically } from '../util/atomic-file.js';

export const SNAPSHOT_FILE = 'exchanges.json';
export const JOURNAL_FILE = 'exchanges.journal';

const FRAME_HEADER_BYTES = 8;
/** No record comes near this (a frame-max of arguments); more is damage. */
const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;
/** A journal smaller than this is never compacted, however small the snapshot. */
const DEFAULT_COMPACT_FLOOR_BYTES = 4 * 1024 * 1024;

export interface JournalOptions {
  /** The journal size below which no snapshot is written (tests lower it). */
  compactFloorBytes?: number;
}

/** What the next save must do before it can append. */
type Next = 'append' | 'new-journal' | 'compact';

export class TopologyJournal {
  private readonly snapshotPath: string;
  private readonly journalPath: string;
  private pending: Buffer[] = [];
  private handle: FileHandle | null = null;
  private journalBytes = 0;
  private snapshotBytes = 0;
  /** Settles after the newest save (or close) asked for. */
  private last: Promise<void> = Promise.resolve();
  /** The save not started yet, which new changes join. */
  private queued: Promise<void> | null = null;

  private constructor(
    private readonly table: ExchangeTable,
    dataDir: string,
    private generation: number,
    private next: Next,
    private readonly compactFloorBytes: number,
  ) {
    this.snapshotPath = join(dataDir, SNAPSHOT_FILE);
    this.journalPath = join(dataDir, JOURNAL_FILE);
    table.watchDurableChanges((change) => {
      this.pending.push(frame(Buffer.from(JSON.stringify(encodeChange(change)))));
    });
  }

  /** Reads the snapshot and replays the journal; sets aside what it cannot read. */
  static async open(
    dataDir: string,
    queues: QueueLookup,
    logger: Logger,
    options: JournalOptions = {},
  ): Promise<{ table: ExchangeTable; journal: TopologyJournal }> {
    const snapshotPath = join(dataDir, SNAPSHOT_FILE);
    const journalPath = join(dataDir, JOURNAL_FILE);
    const floor = options.compactFloorBytes ?? DEFAULT_COMPACT_FLOOR_BYTES;

    let table = new ExchangeTable(queues);
    let generation = 0;
    let snapshotBytes = 0;
    let snapshotLost = false;
    try {
      const text = await readFile(snapshotPath, 'utf8');
      ({ table, generation } = ExchangeTable.restore(JSON.parse(text), queues));
      snapshotBytes = Buffer.byteLength(text);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        const aside = await setAside(snapshotPath);
        logger.error({ err, path: snapshotPath, aside },
          'exchanges file unreadable, set aside; starting with the built-ins');
        snapshotLost = true;
      }
    }

    let bytes: Buffer | null = null;
    let next: Next = 'new-journal';
    try {
      bytes = await readFile(journalPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        const aside = await setAside(journalPath);
        logger.error({ err, path: journalPath, aside },
          'exchanges journal unreadable, set aside; starting from the snapshot');
        next = 'compact';
      }
    }
    let journalBytes = 0;
    if (bytes !== null && snapshotLost) {
      // Changes to a state no longer known: keep them for the operator.
      const aside = await setAside(journalPath);
      logger.error({ path: journalPath, aside }, 'exchanges journal set aside with its snapshot');
      next = 'compact';
    } else if (bytes !== null) {
      const replay = replayJournal(bytes, table, generation);
      if (replay.problem !== null) {
        const aside = replay.keepFile ? null : await setAside(journalPath);
        logger[replay.keepFile ? 'warn' : 'error'](
          { path: journalPath, aside, problem: replay.problem, records: replay.records },
          replay.keepFile ? 'exchanges journal: dropped its unfinished end'
            : 'exchanges journal unreadable past a point, set aside; kept what came before');
      }
      next = replay.next;
      journalBytes = replay.validBytes;
    } else if (snapshotLost) {
      next = 'compact';
    }

    const journal = new TopologyJournal(table, dataDir, generation, next, floor);
    journal.snapshotBytes = snapshotBytes;
    journal.journalBytes = journalBytes;
    // Damage found: write the state kept now, so a second restart does
    // not depend on files set aside. A full disk only delays it.
    if (next === 'compact' && !snapshotLost && bytes !== null) {
      await journal.sync().catch((err: unknown) =>
        logger.error(
          { err },
          'exchanges snapshot not written after a damaged journal; next change retries',
        ));
    }
    return { table, journal };
  }

  /** Resolves once every change made so far is on disk; rejects if a write failed. */
  sync(): Promise<void> {
    if (this.queued !== null) return this.queued;
    if (this.pending.length === 0 && this.next !== 'compact') return this.last;
    const save = this.last.catch(() => {}).then(() => {
      this.queued = null;
      return this.save();
    });
    this.queued = save;
    this.last = save;
    return save;
  }

  /** Settles when every save asked for so far has ended. */
  async flush(): Promise<void> {
    await this.last.catch(() => {});
  }

  /** Closes the file once the saves under way end; later changes are not kept. */
  close(): Promise<void> {
    this.table.watchDurableChanges(null);
    const closing = this.last.catch(() => {}).then(() => this.closeHandle());
    this.last = closing;
    return closing;
  }

  private async save(): Promise<void> {
    const compactAt = Math.max(this.compactFloorBytes, this.snapshotBytes);
    if (this.next === 'compact' || this.journalBytes > compactAt) {
      await this.compact();
      return;
    }
    if (this.pending.length === 0) return;
    if (this.next === 'new-journal') await this.startJournal();
    const batch = Buffer.concat(this.pending);
    this.pending = [];
    try {
      this.handle ??= await open(this.journalPath, 'a');
      await writeAll(this.handle, batch);
      await this.handle.datasync();
      this.journalBytes += batch.length;
    } catch (err) {
      // Part of the batch may be on disk: never append after it.
      this.next = 'compact';
      const why = (err as Error).message;
      throw new StoreUnavailableError(`cannot write ${this.journalPath}: ${why}`, err);
    }
  }

  /** A snapshot of everything made so far, then an empty journal after it. */
  private async compact(): Promise<void> {
    this.next = 'compact';
    const text = JSON.stringify(this.table.snapshot(this.generation + 1));
    // Every pending record is in the snapshot: their changes came before it.
    this.pending = [];
    await writeAtomically(this.snapshotPath, text);
    this.generation += 1;
    this.snapshotBytes = Buffer.byteLength(text);
    await this.startJournal();
  }

  private async startJournal(): Promise<void> {
    this.next = 'new-journal';
    await this.closeHandle();
    const header = frame(Buffer.from(JSON.stringify({ generation: this.generation })));
    await writeAtomically(this.journalPath, header);
    this.journalBytes = header.length;
    this.next = 'append';
  }

  private async closeHandle(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    await handle?.close().catch(() => {});
  }
}

// --- frames -----------------------------------------------------------------

function frame(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.writeUInt32BE(crc32c(payload), 4);
  payload.copy(out, FRAME_HEADER_BYTES);
  return out;
}

interface Replay {
  /** Bytes of whole, good frames from the start. */
  validBytes: number;
  /** Records applied. */
  records: number;
  next: Next;
  /** What was wrong, if anything. */
  problem: string | null;
  /** The problem is a torn end: the file stays (nothing is lost). */
  keepFile: boolean;
}

/**
 * Applies the journal's records to `table` (restored from the snapshot
 * of `generation`) up to the first frame that is cut short, fails its
 * CRC or does not fit. Answers how far it got and what the next save
 * must do.
 */
export function replayJournal(bytes: Buffer, table: ExchangeTable, generation: number): Replay {
  let at = 0;
  let records = 0;
  const result = (next: Next, problem: string | null, keepFile: boolean): Replay =>
    ({ validBytes: at, records, next, problem, keepFile });

  for (let index = 0; ; index++) {
    if (at === bytes.length) {
      // A journal with no header was cut short while it was made.
      return index === 0 ? result('new-journal', null, true) : result('append', null, true);
    }
    if (bytes.length - at < FRAME_HEADER_BYTES) {
      return result('compact', `frame ${index} cut short`, true);
    }
    const length = bytes.readUInt32BE(at);
    if (length > MAX_PAYLOAD_BYTES) {
      return result('compact', `frame ${index} claims ${length} bytes`, false);
    }
    const end = at + FRAME_HEADER_BYTES + length;
    if (end > bytes.length) return result('compact', `frame ${index} cut short`, true);
    const payload = bytes.subarray(at + FRAME_HEADER_BYTES, end);
    if (crc32c(payload) !== bytes.readUInt32BE(at + 4)) {
      // A last frame whose pages were not all written, or damage inside.
      const last = end === bytes.length;
      return result('compact', `frame ${index} fails its CRC`, last);
    }

    let parsed: unknown;
    try {
      parsed = JSON.parse(payload.toString('utf8'));
    } catch {
      return result('compact', `frame ${index} is not JSON`, false);
    }
    if (index === 0) {
      const journalGeneration = (parsed as { generation?: unknown } | null)?.generation;
      if (journalGeneration === generation) {
        at = end;
        continue;
      }
      if (typeof journalGeneration === 'number' && journalGeneration < generation) {
        // The snapshot after it was written; its records are all in there.
        return { validBytes: 0, records: 0, next: 'new-journal', problem: null, keepFile: true };
      }
      return result('compact', `generation ${String(journalGeneration)} does not follow ` +
        `the snapshot's ${generation}`, false);
    }
    try {
      table.applyChange(parsed, `journal.${index}`);
    } catch (err) {
      return result('compact', (err as Error).message, false);
    }
    records++;
    at = end;
  }
}

async function writeAll(handle: FileHandle, bytes: Buffer): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}
