import { claimNextJob, type ClaimOptions, type Executor } from "@fleet/orchestrator";
import type { SQL } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";

/**
 * The exact text and parameters of Fleet's claim statement, to EXPLAIN it. It is taken from the
 * orchestrator's own `claimNextJob` by handing it an executor that records the query instead of
 * running it, so the plan shown is the plan of the statement production runs.
 */
export async function claimStatementText(options: ClaimOptions): Promise<{ sql: string; params: unknown[] }> {
  let captured: SQL | undefined;
  const recorder = {
    execute: (query: SQL) => {
      captured = query;
      return Promise.resolve({ rows: [] });
    },
  } as unknown as Executor;
  await claimNextJob(recorder, options);
  if (!captured) throw new Error("claimNextJob ran no statement");
  const { sql, params } = new PgDialect().sqlToQuery(captured);
  return { sql, params };
}
