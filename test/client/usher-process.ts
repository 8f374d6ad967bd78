// Test harness: runs a real `usher serve` on a free port of 127.0.0.1 with
// a fresh data directory, and runs `usher` commands against it. Shared by
// the client and CLI tests.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';

/** dist/test/client/ -> bin/usher at the checkout's root. */
export const USHER_BIN = fileURLToPath(
  new URL('../../../bin/usher', import.meta.url),
);

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

export interface UsherServer {
  url: string;
  /** The AMQP listener, with guest's credentials. */
  amqpUrl: string;
  dataDir: string;
  pid: number;
  /** Everything the server logged so far. */
  log(): string;
  /** SIGTERM, wait for exit, remove the data directory; answers the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts `usher serve --port 0` (plus `args`) and waits for its listening
 * line.
 */
export async function startUsher(args: string[] = []): Promise<UsherServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'usher-test-'));
  const child = spawn(
    process.execPath,
    [
      USHER_BIN, 'serve', '--data', dataDir, '--port', '0', '--amqp-port', '0',
      '--host', '127.0.0.1', ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (out += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (out += text));

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => fail('did not start in time'), START_TIMEOUT_MS);
    const onData = () => {
      const match = /usher listening on (http:\/\/[^\s"]+)/.exec(out);
      if (match) done(() => resolve(match[1]));
    };
    const onExit = (code: number | null) => fail(`exited early (${code})`);
    function fail(why: string) {
      done(() => {
        child.kill('SIGKILL');
        reject(new Error(`usher serve ${why}; output:\n${out}`));
      });
    }
    function done(then: () => void) {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      then();
    }
    child.stdout.on('data', onData);
    child.on('exit', onExit);
  });

  const amqpPort = /usher AMQP 0-9-1 on amqp:\/\/[^\s:"]+:(\d+)/.exec(out)?.[1];
  return {
    url,
    amqpUrl: `amqp://guest:guest@127.0.0.1:${amqpPort}`,
    dataDir,
    pid: child.pid!,
    log: () => out,
    stop: async () => {
      const code = await stopChild(child);
      await rm(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}

async function stopChild(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  process.kill(child.pid!, 'SIGTERM');
  const timer = setTimeout(
    () => process.kill(child.pid!, 'SIGKILL'),
    STOP_TIMEOUT_MS,
  );
  const code = await exited;
  clearTimeout(timer);
  return code;
}

export interface RunOptions {
  url?: string;
  input?: string | Buffer;
  env?: Record<string, string>;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `usher <args>` to completion. `url` goes in USHER_URL so the
 * commands under test do not need --url.
 */
export function runUsher(
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  if (options.url !== undefined) env.USHER_URL = options.url;

  const child = spawn(process.execPath, [USHER_BIN, ...args], {
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  child.stdin.end(options.input ?? '');

  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A port nothing listens on: bound, then released. */
export async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Polls `check` until it stops throwing, or rethrows after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T> | T,
  timeoutMs = 5_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

/** One `usher serve` shared by a test file, and a runner aimed at it. */
export interface SharedUsher {
  /** The server, once the file's `before` hook has started it. */
  server(): UsherServer;
  /** Runs `usher <args>` against the server and expects exit 0. */
  run(args: string[], input?: string | Buffer): Promise<RunResult>;
}

/**
 * Starts `usher serve` before the calling file's tests and stops it after
 * them; call at the top level of a test file.
 */
export function useUsherServer(): SharedUsher {
  let server: UsherServer | undefined;
  before(async () => {
    server = await startUsher();
  });
  after(async () => {
    await server?.stop();
  });

  const started = (): UsherServer => {
    if (server === undefined) throw new Error('usher serve is not started yet');
    return server;
  };
  return {
    server: started,
    async run(args, input) {
      const result = await runUsher(args, { url: started().url, input });
      assert.equal(result.code, 0, `usher ${args.join(' ')}: ${result.stderr}`);
      return result;
    },
  };
}
