// Which messages may have been delivered before a crash. Deliveries are
// not logged (a record for each would cost every consume a write): a
// channel or connection that closes hands its deliveries back with the
// attempt raised, and that is logged, but a crash closes nothing, and the
// log cannot tell a message a consumer held from one never delivered.
// They came back with `redelivered` false, and a consumer that checks for
// duplicates only when it is set processed them twice.
//
// AMQP sets `redelivered` on a message that *may* have been delivered
// before. So after a crash (DataLock found a lock never released) every
// message then in the log is marked so, for as long as it lives: one
// number, the highest seq the crashed run had made, saved before the
// broker serves, so that later restarts keep it. A clean stop raises it
// to the highest seq a consumer still held (raiseMark): an HTTP lease is
// not handed back as an AMQP channel's deliveries are when it closes. It
// is saved in the log's folder: seqs count from the log, and a log
// removed, or put back from a backup, takes its mark along. A message never delivered before the
// crash is marked too; an idempotent consumer only checks it once more.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Logger } from 'pino';

import { writeAtomically } from '../util/atomic-file.js';

export const MAYBE_DELIVERED_FILE = 'maybe-delivered';

/**
 * The highest seq of a message that may have been delivered before a
 * crash (0: none). After one (`crashed`), that is every seq up to
 * `lastSeq`, the highest the log holds, saved before it is answered. A
 * mark that cannot be read counts as every seq: too many marked is safe.
 */
export async function maybeDeliveredUpTo(
  logDir: string,
  crashed: boolean,
  lastSeq: number,
  logger: Logger,
): Promise<number> {
  const path = join(logDir, MAYBE_DELIVERED_FILE);
  let kept = readMark(path);
  if (kept === UNREADABLE) {
    logger.warn({ path }, 'the crash mark is unreadable: every message now held counts as ' +
      'possibly delivered');
    crashed = true;
    kept = 0;
  }
  if (!crashed || lastSeq <= kept) return kept;
  await raiseMark(logDir, lastSeq);
  return lastSeq;
}

const UNREADABLE = -1;

/** The saved mark; 0 without one; UNREADABLE for a file that is no number. */
function readMark(path: string): number {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  if (!/^\d{1,16}\n?$/.test(text)) return UNREADABLE;
  const seq = Number(text.trim());
  return Number.isSafeInteger(seq) ? seq : UNREADABLE;
}

/** Saves `seq` as the mark (above the one kept; the caller knows it). */
export async function raiseMark(logDir: string, seq: number): Promise<void> {
  await writeAtomically(join(logDir, MAYBE_DELIVERED_FILE), `${seq}\n`);
}
