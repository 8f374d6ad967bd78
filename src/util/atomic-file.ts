// Small files rewritten whole (exchanges.json, amqp-queues.json,
// maybe-delivered): write a temporary file, fsync it, rename it over the
// old one, fsync the folder, so a crash leaves either the old file or the
// new one, never half.

import { open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

import { StoreUnavailableError } from '../errors.js';

/**
 * A failed write (disk full, I/O error) is a StoreUnavailableError, so the
 * client hears 506 RESOURCE_ERROR naming the file rather than an internal
 * error; the half-written temporary file is removed, giving its space back.
 */
export async function writeAtomically(path: string, text: string | Uint8Array): Promise<void> {
  const temporary = `${path}.tmp`;
  try {
    const file = await open(temporary, 'w');
    try {
      await file.writeFile(text);
      await file.datasync();
    } finally {
      await file.close();
    }
  } catch (err) {
    await unlink(temporary).catch(() => {});
    throw new StoreUnavailableError(`cannot write ${path}: ${(err as Error).message}`, err);
  }
  await rename(temporary, path);
  const folder = await open(join(path, '..'), 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

/**
 * Rewrites one file whole, one write at a time. Saves asked for while a
 * write is under way share the next write, whose snapshot is taken when
 * it starts and so holds every change made before they asked: under many
 * concurrent declares and binds the disk sees two writes, not one each.
 */
export class CoalescingFile {
  private writing: Promise<void> = Promise.resolve();
  private next: Promise<void> | null = null;

  constructor(
    private readonly path: string,
    private readonly snapshot: () => string,
  ) {}

  save(): Promise<void> {
    if (this.next !== null) return this.next;
    // A failed write must not fail every later one: each starts afresh.
    const next = this.writing.catch(() => {}).then(() => {
      this.next = null;
      return writeAtomically(this.path, this.snapshot());
    });
    this.next = next;
    this.writing = next;
    return next;
  }

  /** Settles when every save asked for so far is on disk (or failed). */
  async flush(): Promise<void> {
    await this.writing.catch(() => {});
  }
}

/**
 * Moves a file that could not be read aside (`<file>.unreadable-<ms>`), so
 * the next save, which starts from the built-ins, does not overwrite what
 * an operator may still restore by hand. Answers the new path, or null
 * when it could not be moved either.
 */
export async function setAside(path: string): Promise<string | null> {
  const aside = `${path}.unreadable-${Date.now()}`;
  try {
    await rename(path, aside);
    return aside;
  } catch {
    return null;
  }
}
