// TLS settings from the certificate and key files given to `usher serve`
// (--tls-cert, --tls-key), shared by the HTTPS and AMQPS listeners. The
// files are read at start and again on SIGHUP, so a renewed certificate
// needs no restart; connections already open keep the one they began with.

import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContextOptions } from 'node:tls';

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

/**
 * Reads the files again and checks that key and certificate make a
 * context, so a half-renewed pair (new certificate, old key) is refused
 * while the listeners keep the pair they have.
 */
export async function rereadTlsFiles(certPath: string, keyPath: string): Promise<TlsFiles> {
  const files = await readTlsFiles(certPath, keyPath);
  createSecureContext(serverTlsOptions(files));
  return files;
}
