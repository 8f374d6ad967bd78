// One broker per data folder. A second `usher serve` on the same folder
// would replay the log the first is still writing, treat its active
// segment as a blank tail and delete it: every later confirm of the first
// broker would be lost. So the folder holds a lock file naming the PID of
// the broker that owns it, created with O_EXCL so that two starts cannot
// both win.
//
// Node has no flock(); a lock left by a broker that died (SIGKILL, power
// loss) is taken over once its PID no longer runs. Taking one over is how
// the broker learns its last run did not close cleanly (crash-marks.ts),
// so the new lock's entry in the folder is synced: a power cut must not
// take it away with the crash it is there to tell of.

import {
  closeSync, fsyncSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';

import { DataDirInUseError } from '../errors.js';

const LOCK_FILE = 'usher.lock';

/**
 * Lock files this process holds. One naming this process's PID that is
 * not among them was left by an earlier process that had the same PID (a
 * container's broker is often PID 1 every time): stale, not in use.
 */
const held = new Set<string>();

export class DataLock {
  private constructor(
    private readonly path: string,
    /** A lock its broker never released was found and taken over: it crashed. */
    readonly tookOverStale: boolean,
  ) {}

  /** Takes the lock of `dataDir`, or throws DataDirInUseError. */
  static acquire(dataDir: string): DataLock {
    mkdirSync(dataDir, { recursive: true });
    const path = join(dataDir, LOCK_FILE);

    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx');
        // The start time tells this process from a later one given its PID.
        const started = statOf(process.pid)?.startTime;
        writeSync(fd, started === undefined ? `${process.pid}\n` : `${process.pid} ${started}\n`);
        fsyncSync(fd);
        closeSync(fd);
        syncFolder(dataDir);
        held.add(path);
        return new DataLock(path, attempt > 0);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }

      const { pid: owner, startTime } = lockOf(path);
      const ours = owner === process.pid && !held.has(path);
      if (owner !== null && !ours && isRunning(owner, startTime)) {
        throw new DataDirInUseError(dataDir, owner);
      }
      // Stale: its broker is gone. Remove it and try once more.
      unlinkSync(path);
    }
    throw new DataDirInUseError(dataDir, lockOf(path).pid ?? 0);
  }

  release(): void {
    held.delete(this.path);
    try {
      if (lockOf(this.path).pid === process.pid) unlinkSync(this.path);
    } catch {
      // Already gone; nothing to release.
    }
  }

  /**
   * release(), except for a start that took over a stale lock: then the
   * file stays, as the crash left it, for the start may have failed
   * before it saved what the crash means (crash-marks.ts). Removed, the
   * next start would not know the broker had crashed.
   */
  releaseAfterFailedStart(): void {
    if (this.tookOverStale) held.delete(this.path);
    else this.release();
  }
}

/** The PID a lock file names, and the start time it records after it, if it does. */
function lockOf(path: string): { pid: number | null; startTime: string | null } {
  let fields: string[];
  try {
    fields = readFileSync(path, 'utf8').trim().split(' ');
  } catch {
    return { pid: null, startTime: null };
  }
  const pid = Number.parseInt(fields[0], 10);
  return {
    pid: Number.isInteger(pid) && pid > 0 ? pid : null,
    startTime: fields[1] ?? null,
  };
}

/**
 * Whether the broker that wrote a lock still runs. A PID that answers may
 * be a zombie, or another process given the PID since (after a reboot, or
 * in a fresh container): where /proc says so, by its state or by a start
 * time unlike the one the lock recorded, the lock is stale.
 */
function isRunning(pid: number, recordedStart: string | null): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it runs, under another user.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = statOf(pid);
  if (stat === null) return true;
  if (stat.state === 'Z') return false;
  return recordedStart === null || stat.startTime === recordedStart;
}

/** A process's state and start time from /proc (Linux); null elsewhere. */
function statOf(pid: number): { state: string; startTime: string } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // After the command's name, which may hold spaces and parentheses:
  // field 3 (state) onwards; the start time is field 22.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const [state, startTime] = [fields[0], fields[19]];
  return state === undefined || startTime === undefined ? null : { state, startTime };
}

function syncFolder(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
