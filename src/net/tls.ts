// TLS settings from the certificate and key files given to `usher serve`
// (--tls-cert, --tls-key), shared by the HTTPS and AMQPS listeners. The
// files are read once at start; a renewed certificate needs a restart.
// TODO(#8): reload the certificate on SIGHUP.

import { readFile } from 'node:fs/promises';
import type { SecureContextOptions } from 'node:tls';

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

export async function readTlsFiles(certPath: string, keyPath: string): Promise<TlsFiles> {
  const [cert, key] = await Promise.all([readFile(certPath), readFile(keyPath)]);
  return { cert, key };
}

/** Options for tls.createServer and https: TLS 1.2 at least. */
export function serverTlsOptions(files: TlsFiles): SecureContextOptions {
  return { cert: files.cert, key: files.key, minVersion: 'TLSv1.2' };
}
