// The file operations the log store's writes and deletions go through. They are
// gathered behind one interface so tests can make a write or a sync fail
// with ENOSPC or EIO without filling a real disk; production uses nodeIo.

import fs from 'node:fs';

import { fsyncDir } from './segment-file.js';

export interface StoreIo {
  /** Opens a file and returns its descriptor (fs.open flags). */
  open(path: string, flags: string): Promise<number>;
  /**
   * Opens an existing file for writes that return only once their data
   * is on disk (O_DSYNC): a writev through it writes and syncs in one
   * call, one trip to libuv's thread pool instead of two. It syncs the
   * written range only, not earlier writes through other descriptors,
   * and reports a writeback error as fdatasync would. Optional: without
   * it the store writes, then calls fdatasync.
   */
  openDataSync?(path: string): Promise<number>;
  /** Writes `buffers` at `position`; resolves with the bytes written. */
  writev(
    fd: number,
    buffers: readonly Buffer[],
    position: number,
  ): Promise<number>;
  fdatasync(fd: number): Promise<void>;
  ftruncate(fd: number, length: number): Promise<void>;
  close(fd: number): Promise<void>;
  /** Removes a dead segment's file. */
  unlink(path: string): Promise<void>;
  /**
   * Renames a dead segment out of the log (dead-segments.ts). Through the
   * io, as is the folder's sync, so that a test can model what a power
   * cut leaves of a rename that sync did not cover (power-cut.ts).
   */
  rename(from: string, to: string): Promise<void>;
  /** Syncs a folder's entries. */
  fsyncDir(dir: string): Promise<void>;
}

/** StoreIo on node:fs's callback API: one promise per call, no more. */
export const nodeIo: StoreIo = {
  open(path, flags) {
    return new Promise((resolve, reject) => {
      fs.open(path, flags, 0o644, (err, fd) =>
        err ? reject(err) : resolve(fd),
      );
    });
  },

  // Where the platform has no O_DSYNC (Windows), none: a descriptor
  // opened without it would write without syncing.
  openDataSync: fs.constants.O_DSYNC === undefined ? undefined : (path) => {
    const flags = fs.constants.O_RDWR | fs.constants.O_DSYNC;
    return new Promise((resolve, reject) => {
      fs.open(path, flags, (err, fd) => (err ? reject(err) : resolve(fd)));
    });
  },

  writev(fd, buffers, position) {
    return new Promise((resolve, reject) => {
      fs.writev(fd, buffers as Buffer[], position, (err, written) =>
        err ? reject(err) : resolve(written),
      );
    });
  },

  fdatasync(fd) {
    return new Promise((resolve, reject) => {
      fs.fdatasync(fd, (err) => (err ? reject(err) : resolve()));
    });
  },

  ftruncate(fd, length) {
    return new Promise((resolve, reject) => {
      fs.ftruncate(fd, length, (err) => (err ? reject(err) : resolve()));
    });
  },

  unlink(path) {
    return new Promise((resolve, reject) => {
      fs.unlink(path, (err) => (err ? reject(err) : resolve()));
    });
  },

  rename(from, to) {
    return new Promise((resolve, reject) => {
      fs.rename(from, to, (err) => (err ? reject(err) : resolve()));
    });
  },

  fsyncDir,

  close(fd) {
    return new Promise((resolve, reject) => {
      fs.close(fd, (err) => (err ? reject(err) : resolve()));
    });
  },
};
