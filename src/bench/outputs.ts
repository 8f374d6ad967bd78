// Where `usher bench` writes its results: --json FILE and --report DIR.
// Both are checked, and their parent folders created, before the run, so
// a typo costs a one-line error rather than the run's figures.

import { constants } from 'node:fs';
import { access, mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import { UsageError } from '../cli/context.js';

export interface OutputPaths {
  /** A file, "-" for stdout, or undefined. */
  json?: string;
  report?: string;
  /** The --calibrate file. */
  calibrate?: string;
}

/** Creates the folders the outputs need and refuses paths that cannot be written. */
export async function prepareOutputs(paths: OutputPaths): Promise<void> {
  if (paths.json !== undefined && paths.json !== '-') await writableFile(paths.json, '--json');
  if (paths.calibrate !== undefined) await writableFile(paths.calibrate, '--calibrate');
  if (paths.report !== undefined) {
    await writableFolder(paths.report, `--report ${paths.report}`);
  }
}

export interface Outputs {
  json: string;
  markdown: string;
  html: () => string;
}

/** Writes the files; prepareOutputs has already made their folders. */
export async function writeOutputFiles(paths: OutputPaths, outputs: Outputs): Promise<void> {
  if (paths.json !== undefined && paths.json !== '-') await writeFile(paths.json, outputs.json);
  if (paths.report !== undefined) {
    await writeFile(join(paths.report, 'result.json'), outputs.json);
    await writeFile(join(paths.report, 'report.md'), outputs.markdown);
    await writeFile(join(paths.report, 'report.html'), outputs.html());
  }
}

async function writableFile(file: string, flag: string): Promise<void> {
  if ((await kindOf(file)) === 'directory')
    throw new UsageError(`${flag} ${file}: is a folder, not a file`);
  await writableFolder(dirname(file), `${flag} ${file}`);
}

async function writableFolder(folder: string, flag: string): Promise<void> {
  try {
    await mkdir(folder, { recursive: true });
  } catch (err) {
    throw new UsageError(`${flag}: cannot create folder ${folder}: ${why(err)}`);
  }
  if ((await kindOf(folder)) !== 'directory')
    throw new UsageError(`${flag}: ${folder} is not a folder`);
  try {
    await access(folder, constants.W_OK);
  } catch (err) {
    throw new UsageError(`${flag}: cannot write in ${folder}: ${why(err)}`);
  }
}

async function kindOf(path: string): Promise<'missing' | 'directory' | 'other'> {
  try {
    return (await stat(path)).isDirectory() ? 'directory' : 'other';
  } catch {
    return 'missing';
  }
}

function why(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ENOTDIR' || code === 'EEXIST') return 'a file is in the way';
  if (code === 'EROFS') return 'read-only file system';
  return err instanceof Error ? err.message : String(err);
}
