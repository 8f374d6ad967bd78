// Finding a python3 that can import what a test's Python programs need
// (Debian's python3-pika, python3-celery). The Debian packages install for
// /usr/bin/python3, which a pyenv or virtualenv `python3` earlier on PATH
// does not see, so both are tried; $USHER_PYTHON overrides them.

import { spawnSync } from 'node:child_process';

/**
 * The interpreter that can import `module`, or an Error saying which
 * Debian package to install; tests keep the Error and fail with it, so a
 * missing package is a failure that says what to do, not a skip.
 */
export function findPython(module: string, debianPackage: string): string | Error {
  const candidates = process.env.USHER_PYTHON ? [process.env.USHER_PYTHON] : ['python3', '/usr/bin/python3'];
  const tried: string[] = [];
  for (const candidate of candidates) {
    const probe = spawnSync(candidate, ['-c', `import ${module}`], { encoding: 'utf8', timeout: 20_000 });
    if (probe.status === 0) return candidate;
    const why = probe.error?.message ?? (probe.stderr.trim().split('\n').at(-1) || `exit ${probe.status}`);
    tried.push(`${candidate}: ${why}`);
  }
  return new Error(
    `these tests need python3 with ${module}, and none was found `
    + `(on Debian: apt-get install ${debianPackage}, as .ci/run does; `
    + `or set USHER_PYTHON to a python that has ${module}). Tried: ${tried.join('; ')}`,
  );
}
