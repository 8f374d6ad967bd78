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
// number, the highest seq the crashed run had made, saved in the data
// folder before the broker serves, so that later restarts keep it. A
// message never delivered before the crash is marked too; an idempotent
// consumer only checks it once more.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { writeAtomically } from '../util/atomic-file.js';

export const MAYBE_DELIVERED_FILE = 'maybe-delivered';

/**
 * The highest seq of a message that may have been delivered before a
 * crash (0: none). After one (`crashed`), that is every seq up to
 * `lastSeq`, the highest the log holds, saved before it is answered.
 */
export async function maybeDeliveredUpTo(
  dataDir: string,
  crashed: boolean,
  lastSeq: number,
): Promise<number> {
  const path = join(dataDir, MAYBE_DELIVERED_FILE);
  const kept = readMark(path);
  if (!crashed || lastSeq <= kept) return kept;
  await writeAtomically(path, `${lastSeq}\n`);
  return lastSeq;
}

/** The saved mark; 0 without one. Written whole (atomic-file.ts), it parses. */
function readMark(path: string): number {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const seq = Number.parseInt(text, 10);
  return Number.isSafeInteger(seq) && seq > 0 ? seq : 0;
}
