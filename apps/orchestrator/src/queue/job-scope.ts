import { sql, type SQL } from "drizzle-orm";
import type { Principal } from "../auth/principal.js";

/**
 * Which jobs a caller may see. A client sees its own; a bootstrap client (from PUBLIC_API_KEYS)
 * also sees the jobs created before clients existed (client_id null), as every public key did
 * then, so an upgrade hides nothing a caller could read before. The internal key sees all.
 */
export type JobScope = { kind: "all" } | { kind: "client"; clientId: string; bootstrap: boolean };

export const ALL_JOBS: JobScope = { kind: "all" };

export function jobScopeOf(principal: Principal): JobScope {
  return principal.kind === "client" ? { kind: "client", clientId: principal.clientId, bootstrap: principal.bootstrap } : ALL_JOBS;
}

/** The SQL condition on `jobs.client_id` for a scope; another client's job reads as missing. */
export function visibleTo(scope: JobScope): SQL {
  if (scope.kind === "all") return sql`true`;
  return scope.bootstrap ? sql`(client_id = ${scope.clientId} or client_id is null)` : sql`client_id = ${scope.clientId}`;
}
