// Open connections per source address, for both listeners: one client
// host (or one attacker) cannot take every file descriptor the broker has.
// Loopback is limited like any other address. The default is generous: a
// service with a thousand long polls is normal, and behind a proxy every
// client shares the proxy's address (raise it there, or limit at the proxy).

export const DEFAULT_MAX_CONNECTIONS_PER_SOURCE = 4096;

export class SourceLimit {
  private readonly open = new Map<string, number>();

  constructor(readonly max: number = DEFAULT_MAX_CONNECTIONS_PER_SOURCE) {}

  /** Counts a new connection; false (and not counted) when over the limit. */
  admit(address: string | undefined): boolean {
    const key = address ?? 'unknown';
    const count = this.open.get(key) ?? 0;
    if (count >= this.max) return false;
    this.open.set(key, count + 1);
    return true;
  }

  release(address: string | undefined): void {
    const key = address ?? 'unknown';
    const left = (this.open.get(key) ?? 1) - 1;
    if (left <= 0) this.open.delete(key);
    else this.open.set(key, left);
  }
}
