import type { Executor } from "../db/client.js";
import { CredentialCache } from "./credential-cache.js";
import { hashCredential } from "./credential-hash.js";
import { findClientByKey, type KeyOwner } from "./find-client-by-key.js";
import { findWorkerByToken } from "./find-worker-by-token.js";

/** Resolves public API keys and worker tokens to their owners, through a short cache. */
export class CredentialStore {
  private readonly clients: CredentialCache<KeyOwner | null>;
  private readonly workers: CredentialCache<string | null>;

  constructor(
    private readonly db: Executor,
    cacheMs: number,
  ) {
    this.clients = new CredentialCache(cacheMs);
    this.workers = new CredentialCache(cacheMs);
  }

  clientByKey(key: string): Promise<KeyOwner | null> {
    const hash = hashCredential(key);
    return this.clients.get(hash, () => findClientByKey(this.db, hash));
  }

  workerByToken(token: string): Promise<string | null> {
    const hash = hashCredential(token);
    return this.workers.get(hash, () => findWorkerByToken(this.db, hash));
  }

  /** After a revocation on this replica: its effect is immediate here. */
  forgetAll(): void {
    this.clients.clear();
    this.workers.clear();
  }
}
