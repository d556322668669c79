/**
 * Remembers credential lookups for `ttlMs`, so 4,000 heartbeats a second do not become 4,000
 * queries; a revoked key therefore keeps working for at most `ttlMs` on other replicas (this one
 * forgets at once, see `clear`). Misses are remembered too, so a flood of wrong keys costs one
 * query per key and period. Concurrent lookups of one key share a single query.
 */
export class CredentialCache<T> {
  private readonly entries = new Map<string, { value: Promise<T>; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    /** Bounds memory under a flood of distinct wrong keys; past it the cache starts over. */
    private readonly maxEntries = 10_000,
  ) {}

  get(key: string, load: () => Promise<T>): Promise<T> {
    if (this.ttlMs <= 0) return load();
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && hit.expiresAt > now) return hit.value;
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    const value = load();
    this.entries.set(key, { value, expiresAt: now + this.ttlMs });
    // A failed lookup (database down) must not be remembered as an answer.
    value.catch(() => {
      if (this.entries.get(key)?.value === value) this.entries.delete(key);
    });
    return value;
  }

  clear(): void {
    this.entries.clear();
  }
}
