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

import { copyFile, mkdir, readdir, stat, truncate, open } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { type StoreIo, nodeIo } from '../../src/storage/io.js';

export type PowerCutMode = 'drop' | 'torn' | 'zeros';

interface FileState {
  path: string;
  /** End of the furthest write that returned. */
  written: number;
  /** What the last fdatasync covered. */
  durable: number;
  /** Ranges data-sync writes made durable past `durable`, [start, end). */
  durableAhead: Array<[number, number]>;
}

export class PowerCutIo implements StoreIo {
  readonly #byFd = new Map<number, FileState>();
  readonly #dataSyncFds = new Set<number>();
  readonly openDataSync: StoreIo['openDataSync'];
  readonly #byPath = new Map<string, FileState>();
  #cut = false;
  #pending = new Set<Promise<unknown>>();
  syncs = 0;

  constructor({ dataSync = false }: { dataSync?: boolean } = {}) {
    this.openDataSync = dataSync ? (path) => this.#openDataSync(path) : undefined;
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
    // linked to this one once synced, log-store.ts) is durable as it is.
    const found = opened !== undefined || flags === 'wx' ? 0 : (await stat(path)).size;
    const state: FileState = opened ?? { path, written: found, durable: found, durableAhead: [] };
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
    return this.#run(async () => {
      await nodeIo.fdatasync(fd);
      this.syncs++;
      if (state) {
        state.durable = Math.max(state.durable, covered);
        extendDurable(state);
      }
    });
  }

  async ftruncate(fd: number, length: number): Promise<void> {
    const state = this.#byFd.get(fd);
    return this.#run(async () => {
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
