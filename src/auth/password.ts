// Password hashing with scrypt (memory-hard, in node:crypto). Each user has
// a random salt; the parameters are stored with the hash so they can be
// raised later without invalidating what is stored. Verification compares
// with timingSafeEqual so the time taken says nothing about the hash.

import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface PasswordHash {
  algorithm: 'scrypt';
  /** CPU/memory cost; 2^14 uses 16 MiB per hash (128 * N * r bytes). */
  N: number;
  r: number;
  p: number;
  salt: string;
  hash: string;
}

const KEY_BYTES = 32;
const SALT_BYTES = 16;
export const DEFAULT_COST = { N: 1 << 14, r: 8, p: 1 };

/** Longest password accepted: scrypt takes any length, a request should not. */
export const MAX_PASSWORD_BYTES = 1024;

function derive(password: string, salt: Buffer, cost: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem: room for N=2^14, r=8 with headroom (the default 32 MiB is
    // enough for it, but not for a later, higher N).
    scrypt(password, salt, KEY_BYTES, { ...cost, maxmem: 256 * 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

export async function hashPassword(
  password: string,
  cost: { N: number; r: number; p: number } = DEFAULT_COST,
): Promise<PasswordHash> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, cost);
  return {
    algorithm: 'scrypt',
    ...cost,
    salt: salt.toString('base64'),
    hash: key.toString('base64'),
  };
}

export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  const expected = Buffer.from(stored.hash, 'base64');
  const key = await derive(password, Buffer.from(stored.salt, 'base64'), {
    N: stored.N,
    r: stored.r,
    p: stored.p,
  });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** A password for the bootstrap admin: 24 characters, 144 bits. */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}
