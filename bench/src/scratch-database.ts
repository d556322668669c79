import { randomBytes } from "node:crypto";
import { migratePostgresUrl } from "@fleet/orchestrator";
import { withAdmin, withDatabase } from "@fleet/testing/postgres";
import pg from "pg";

export interface ScratchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}


/**
 * The databases one run created, so an interrupted run (Ctrl-C) still drops them. Only names this
 * process made are ever dropped: the server is shared with other people's databases.
 */
export class ScratchDatabases {
  readonly #alive = new Map<string, ScratchDatabase>();

  constructor(private readonly serverUrl: string) {}

  /** A fresh, uniquely named database with Fleet's migrations applied (unless `migrate: false`). */
  async create(label: string, opts: { migrate?: boolean } = {}): Promise<ScratchDatabase> {
    const name = `fleet_bench_${label}_${process.pid}_${randomBytes(3).toString("hex")}`;
    await withAdmin(this.serverUrl, (c) => c.query(`create database ${pg.escapeIdentifier(name)}`));
    const url = withDatabase(this.serverUrl, name);
    const handle: ScratchDatabase = {
      name,
      url,
      drop: async () => {
        if (!this.#alive.delete(name)) return;
        await withAdmin(this.serverUrl, (c) => c.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`));
      },
    };
    this.#alive.set(name, handle);
    if (opts.migrate !== false) {
      try {
        await migratePostgresUrl(url);
      } catch (err) {
        await handle.drop();
        throw err;
      }
    }
    return handle;
  }

  async dropAll(): Promise<void> {
    for (const db of [...this.#alive.values()]) await db.drop().catch(() => undefined);
  }
}
