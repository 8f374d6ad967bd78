// A StoreIo that can lose power. Until `cut()` it is nodeIo, keeping
// track of how much of every file it wrote and how much of that an
// fdatasync made durable. After the cut every call hangs forever, as if
// the machine had died mid-call, and `image()` copies the data folder the
// way the disk could look at the next boot: each file kept up to its last
// fdatasync and its unsynced tail dropped, torn at a random byte, or
// replaced with zeros (blocks allocated but never written).
//
// With `{ dataSync: true }` it opens data-sync descriptors too
// (StoreIo.openDataSync): a write through one makes its own bytes
// durable, not what lies before them. A file is still kept only up to
// the end of its durable prefix: durable bytes past a stretch that is
// not count only once the stretch before them is.
//
// With `{ metadata: true }` a folder's entries and a file's length are
// not durable before their sync either, as POSIX has it: a rename or an
// unlink only once its folder is synced (fsyncDir), a cut (ftruncate)
// only once its file is. The image keeps each such change or not, at
// random, one file's changes in the order made (a later one kept means
// the earlier ones were), different files' independently. Without it,
// they are durable as soon as they return (the model the older tests
// were written against). Not modelled: a write to a file whose cut is
// not durable yet (a failed batch's cut-back, then its rewrite); such a
// write throws.

import { readFileSync, readSync, fstatSync } from 'node:fs';
import {
  copyFile, mkdir, readdir, rename, stat, truncate, open, unlink, writeFile, appendFile,
} from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { type StoreIo, nodeIo } from '../../src/storage/io.js';
import { fsyncDir } from '../../src/storage/segment-file.js';

export type PowerCutMode = 'drop' | 'torn' | 'zeros';

interface FileState {
  path: string;
  /** End of the furthest write that returned. */
  written: number;
  /** What the last fdatasync covered. */
  durable: number;
  /** Ranges data-sync writes made durable past `durable`, [start, end). */
  durableAhead: Array<[number, number]>;
  /** With `metadata`: cuts no sync of the file has covered yet, oldest first. */
  cuts: Cut[];
  /** One number per file, kept across renames: one file's changes go in order. */
  inode: number;
}

/** An ftruncate: the bytes it removed, and what was durable before it. */
interface Cut {
  length: number;
  removed: Buffer;
  durableBefore: number;
}

/** With `metadata`: a rename or unlink its folder's sync has not covered yet. */
interface EntryChange {
  dir: string;
  kind: 'rename' | 'unlink';
  path: string;
  /** A rename's new name. */
  to: string | null;
  state: FileState;
  /** An unlink's file as it was, to put back if the unlink is not kept. */
  content: Buffer | null;
}

export class PowerCutIo implements StoreIo {
  readonly #byFd = new Map<number, FileState>();
  readonly #dataSyncFds = new Set<number>();
  readonly openDataSync: StoreIo['openDataSync'];
  readonly #byPath = new Map<string, FileState>();
  readonly #metadata: boolean;
  #entryChanges: EntryChange[] = [];
  #inodes = 0;
  #cut = false;
  #pending = new Set<Promise<unknown>>();
  syncs = 0;

  constructor(
    { dataSync = false, metadata = false }: { dataSync?: boolean; metadata?: boolean } = {},
  ) {
    this.openDataSync = dataSync ? (path) => this.#openDataSync(path) : undefined;
    this.#metadata = metadata;
  }

  get isCut(): boolean {
    return this.#cut;
  }

  /** The power goes: no call made from now on returns. */
  cut(): void {
    this.#cut = true;
  }

  /** Resolves once every real call begun before the cut has finished. */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  async open(path: string, flags: string): Promise<number> {
    const fd = await this.#run(() => nodeIo.open(path, flags));
    // Segments are created with 'wx': a new, empty file. A second
    // descriptor of the same file (the store syncs through two) shares
    // its state: a sync through either covers what either wrote.
    const opened = flags === 'wx' ? undefined : this.#byPath.get(path);
    // A file this io did not make (a segment made under another name and
    // linked to this one once synced, active-segment.ts) is durable as it is.
    const found = opened !== undefined || flags === 'wx' ? 0 : (await stat(path)).size;
    const state: FileState = opened ??
      { path, written: found, durable: found, durableAhead: [], cuts: [], inode: ++this.#inodes };
    this.#byFd.set(fd, state);
    this.#byPath.set(path, state);
    return fd;
  }

  async #openDataSync(path: string): Promise<number> {
    const fd = await this.#run(() => nodeIo.openDataSync!(path));
    const state = this.#byPath.get(path);
    if (state !== undefined) this.#byFd.set(fd, state);
    this.#dataSyncFds.add(fd);
    return fd;
  }

  async writev(fd: number, buffers: readonly Buffer[], position: number): Promise<number> {
    const state = this.#byFd.get(fd);
    const dataSync = this.#dataSyncFds.has(fd);
    if (state !== undefined && state.cuts.length > 0) {
      throw new Error(`power-cut.ts models no write after a cut not yet synced (${state.path})`);
    }
    return this.#run(async () => {
      const written = await nodeIo.writev(fd, buffers, position);
      if (state) {
        state.written = Math.max(state.written, position + written);
        if (dataSync) {
          this.syncs++;
          state.durableAhead.push([position, position + written]);
          extendDurable(state);
        }
      }
      return written;
    });
  }

  async fdatasync(fd: number): Promise<void> {
    const state = this.#byFd.get(fd);
    const covered = state?.written ?? 0;
    const cuts = state?.cuts.length ?? 0;
    return this.#run(async () => {
      await nodeIo.fdatasync(fd);
      this.syncs++;
      if (state) {
        state.durable = Math.max(state.durable, covered);
        extendDurable(state);
        state.cuts.splice(0, cuts);
      }
    });
  }

  async ftruncate(fd: number, length: number): Promise<void> {
    const state = this.#byFd.get(fd);
    return this.#run(async () => {
      if (this.#metadata && state) {
        const size = fstatSync(fd).size;
        const removed = Buffer.alloc(Math.max(0, size - length));
        if (removed.length > 0) readSync(fd, removed, 0, removed.length, length);
        state.cuts.push({ length, removed, durableBefore: state.durable });
      }
      await nodeIo.ftruncate(fd, length);
      if (state) {
        state.written = length;
        state.durable = Math.min(state.durable, length);
        state.durableAhead = state.durableAhead
          .filter(([start]) => start < length)
          .map(([start, end]) => [start, Math.min(end, length)]);
      }
    });
  }

  close(fd: number): Promise<void> {
    this.#dataSyncFds.delete(fd);
    return this.#run(() => nodeIo.close(fd));
  }

  rename(from: string, to: string): Promise<void> {
    return this.#run(async () => {
      await rename(from, to);
      const state = this.#stateOf(from);
      this.#byPath.delete(from);
      state.path = to;
      this.#byPath.set(to, state);
      if (this.#metadata) {
        const dir = resolve(dirname(from));
        this.#entryChanges.push({ dir, kind: 'rename', path: from, to, state, content: null });
      }
    });
  }

  unlink(path: string): Promise<void> {
    return this.#run(async () => {
      let content: Buffer | null = null;
      try {
        content = readFileSync(path);
      } catch {
        // Not there: the unlink below says so.
      }
      await unlink(path);
      const state = this.#stateOf(path);
      this.#byPath.delete(path);
      if (this.#metadata) {
        const dir = resolve(dirname(path));
        this.#entryChanges.push({ dir, kind: 'unlink', path, to: null, state, content });
      }
    });
  }

  fsyncDir(dir: string): Promise<void> {
    const covered = this.#entryChanges.filter((change) => change.dir === resolve(dir));
    return this.#run(async () => {
      await fsyncDir(dir);
      this.#entryChanges = this.#entryChanges.filter((change) => !covered.includes(change));
    });
  }

  // A file this io never opened was durable as it stood.
  #stateOf(path: string): FileState {
    let state = this.#byPath.get(path);
    if (state === undefined) {
      state = { path, written: 0, durable: 0, durableAhead: [], cuts: [], inode: ++this.#inodes };
      state.written = state.durable = Number.MAX_SAFE_INTEGER;
      this.#byPath.set(path, state);
    }
    return state;
  }

  /**
   * Copies `from` to `to` as the disk could hold it after the cut. Files
   * this io never opened are copied whole (they were written and synced
   * before, or are not the log's). Returns the bytes lost per file.
   */
  async image(
    from: string,
    to: string,
    mode: PowerCutMode,
    random: () => number,
    skip: (name: string) => boolean = () => false,
  ): Promise<Map<string, number>> {
    if (this.#metadata) return this.#imageWithMetadata(from, to, mode, random, skip);
    const lost = new Map<string, number>();
    for (const path of await listFiles(from)) {
      const name = relative(from, path);
      if (skip(name)) continue;
      const target = join(to, name);
      await mkdir(join(target, '..'), { recursive: true });
      try {
        await copyFile(path, target);
      } catch (err) {
        // Deleted while we looked: a reclaimed segment. Gone or not, both
        // are states a power cut can leave.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }

      const state = this.#byPath.get(path);
      if (state === undefined) continue;
      const size = (await stat(target)).size;
      if (size <= state.durable) continue;
      const keep = mode === 'drop'
        ? state.durable
        : state.durable + Math.floor(random() * (size - state.durable + 1));
      if (mode === 'zeros') await zeroFrom(target, keep, size);
      else await truncate(target, keep);
      lost.set(name, size - keep);
    }
    return lost;
  }

  // image() with `metadata`: first which folder changes the disk kept,
  // then each file's cuts, then its unsynced tail as in image().
  async #imageWithMetadata(
    from: string,
    to: string,
    mode: PowerCutMode,
    random: () => number,
    skip: (name: string) => boolean,
  ): Promise<Map<string, number>> {
    const byFile = new Map<number, EntryChange[]>();
    for (const change of this.#entryChanges) {
      const changes = byFile.get(change.state.inode) ?? [];
      changes.push(change);
      byFile.set(change.state.inode, changes);
    }
    const undone = new Set<EntryChange>();
    for (const changes of byFile.values()) {
      const kept = Math.floor(random() * (changes.length + 1));
      for (const change of changes.slice(kept)) undone.add(change);
    }

    // The files as they stand, then the changes not kept taken back,
    // newest first.
    const files = new Map<string, { source: string | Buffer; state: FileState | undefined }>();
    for (const path of await listFiles(from)) {
      files.set(path, { source: path, state: this.#byPath.get(path) });
    }
    for (const change of [...this.#entryChanges].reverse()) {
      if (!undone.has(change)) continue;
      if (change.kind === 'unlink') {
        if (change.content !== null) {
          files.set(change.path, { source: change.content, state: change.state });
        }
        continue;
      }
      const renamed = files.get(change.to!);
      if (renamed === undefined) continue;
      files.delete(change.to!);
      files.set(change.path, renamed);
    }

    const lost = new Map<string, number>();
    for (const [path, { source, state }] of files) {
      const name = relative(from, path);
      if (skip(name)) continue;
      const target = join(to, name);
      await mkdir(dirname(target), { recursive: true });
      if (typeof source !== 'string') {
        await writeFile(target, source);
      } else {
        try {
          await copyFile(source, target);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw err;
        }
      }
      if (state === undefined) continue;

      // The oldest cuts up to a random point kept; the rest undone, the
      // newest first, each giving back the bytes it removed.
      const kept = Math.floor(random() * (state.cuts.length + 1));
      let durable = state.durable;
      for (let i = state.cuts.length - 1; i >= kept; i--) {
        await appendFile(target, state.cuts[i].removed);
        durable = state.cuts[i].durableBefore;
      }

      const size = (await stat(target)).size;
      if (size <= durable) continue;
      const keep = mode === 'drop'
        ? durable
        : durable + Math.floor(random() * (size - durable + 1));
      if (mode === 'zeros') await zeroFrom(target, keep, size);
      else await truncate(target, keep);
      lost.set(name, size - keep);
    }
    return lost;
  }

  #run<T>(call: () => Promise<T>): Promise<T> {
    if (this.#cut) return new Promise<T>(() => {});
    const promise = call();
    this.#pending.add(promise);
    const forget = () => this.#pending.delete(promise);
    promise.then(forget, forget);
    // A call that finishes after the cut never reports back.
    return promise.then(
      (value) => (this.#cut ? new Promise<T>(() => {}) : value),
      (err: unknown) => (this.#cut ? new Promise<T>(() => {}) : Promise.reject(err)),
    );
  }
}

// Durable ranges that now touch the durable prefix join it.
function extendDurable(state: FileState): void {
  for (let joined = true; joined;) {
    joined = false;
    for (const [start, end] of state.durableAhead) {
      if (start <= state.durable && end > state.durable) {
        state.durable = end;
        joined = true;
      }
    }
  }
  state.durableAhead = state.durableAhead.filter(([, end]) => end > state.durable);
}

async function listFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await listFiles(path)));
    else files.push(path);
  }
  return files;
}

// Keeps the file's length but zeroes everything from `offset`: the file
// grew on disk, its new blocks never got their data.
async function zeroFrom(path: string, offset: number, size: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.write(Buffer.alloc(size - offset), 0, size - offset, offset);
  } finally {
    await handle.close();
  }
}
