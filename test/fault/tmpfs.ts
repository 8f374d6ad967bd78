// A small real filesystem that can fill up: a tmpfs mounted in a temp
// folder for one test, unmounted in a finally. Mounting needs root (and
// CAP_SYS_ADMIN); without it the caller skips with the reason given.

import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type TmpfsResult = { skipped: string } | { skipped: null };

export async function withTmpfs(
  sizeBytes: number,
  fn: (dir: string) => Promise<void>,
): Promise<TmpfsResult> {
  if (process.getuid?.() !== 0) {
    return { skipped: 'a real ENOSPC needs a tmpfs, and mounting one needs root' };
  }
  const dir = mkdtempSync(join(tmpdir(), 'usher-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir], {
      stdio: 'pipe',
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    return { skipped: `mount -t tmpfs failed: ${(err as Error).message.split('\n')[0]}` };
  }
  try {
    await fn(dir);
  } finally {
    try {
      execFileSync('umount', [dir], { stdio: 'pipe' });
    } catch {
      // Something still holds a file open: detach it now, freed when closed.
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    }
    rmSync(dir, { recursive: true, force: true });
  }
  return { skipped: null };
}

/** Writes to `file` until the filesystem has not one byte left. */
export function fillUp(file: string): void {
  for (const chunk of [Buffer.alloc(64 * 1024), Buffer.alloc(512), Buffer.alloc(1)]) {
    for (;;) {
      try {
        appendFileSync(file, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        break;
      }
    }
  }
}
