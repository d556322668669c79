/**
 * Who a request acts for, set by the auth hooks before the body is read. `internal` holds the
 * shared INTERNAL_API_KEY and may do anything; a `client` sees only its own jobs (bootstrap
 * clients also those created before clients existed); a `worker` holds a per-worker token and
 * may act only as itself.
 */
export type Principal =
  | { kind: "internal" }
  | { kind: "client"; clientId: string; bootstrap: boolean }
  | { kind: "worker"; workerId: string };

/** Owner of the jobs created with the internal key (inserted by migration 0002). */
export const INTERNAL_CLIENT_ID = "00000000-0000-0000-0000-000000000000";

export const INTERNAL_PRINCIPAL: Principal = { kind: "internal" };
