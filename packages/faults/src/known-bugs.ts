import type { UnexpectedExit } from "./fault-fleet.js";

export interface KnownBug {
  id: string;
  /** Where, why, the fix, and the regression test that turns red once it is fixed. */
  summary: string;
  /** A process exit this bug explains (fault suite). */
  exit?(exit: UnexpectedExit): boolean;
  /** A response this bug explains (fuzz), given the payload that was sent. */
  response?(status: number, body: string, payload: string | undefined): boolean;
}

/**
 * Bugs these suites found in code this package does not own, each pinned by a deterministic
 * `it.fails` test in known-bugs.test.ts. Only an exact match of one is reported as "known" instead
 * of failing a run; anything else fails it. Delete an entry, and its `it.fails`, once fixed.
 */
export const KNOWN_BUGS: readonly KnownBug[] = [
  {
    id: "orchestrator-pg-client-error-crash",
    summary:
      "apps/orchestrator/src/db/client.ts createPostgres(): a pool client checked out by db.transaction() has no 'error' " +
      "listener, so PostgreSQL going away mid-transaction throws an unhandled 'error' event and the orchestrator exits 1. " +
      "Fix: pool.on('connect', (c) => c.on('error', log)).",
    exit: (e) => e.what.startsWith("orchestrator") && e.lastLines.some((l) => l.includes("Emitted 'error' event on Client instance")),
  },
  {
    id: "orchestrator-router-errors-skip-error-body",
    summary:
      "apps/orchestrator/src/app.ts: no Fastify `frameworkErrors`, so a malformed %-escape in the path (FST_ERR_BAD_URL, 400) " +
      "or a path parameter over 100 characters (FST_ERR_MAX_PARAM_LENGTH, 414) is answered with Fastify's own body instead " +
      "of the contract's ErrorBody (no code from ErrorCode, no request_id).",
    response: (status, body) =>
      (status === 400 && body.includes('"code":"FST_ERR_BAD_URL"')) || (status === 414 && body.includes('"code":"FST_ERR_MAX_PARAM_LENGTH"')),
  },
  {
    id: "orchestrator-nul-and-lone-surrogate-500",
    summary:
      "apps/orchestrator (every route that writes a string): a JSON string holding U+0000 (any text or jsonb column) or an " +
      "unpaired surrogate such as \\ud800 (any jsonb column: metadata, params, metrics, system, engine, error_info) passes " +
      "the zod schemas and PostgreSQL rejects it, so the client gets 500 internal_error instead of 400 invalid_request. " +
      "Fix: refuse such strings once, in app.ts's JSON body parser (or with a contract string refinement).",
    // JSON.stringify writes NUL and lone surrogates as escapes; paired surrogates stay raw.
    response: (status, _body, payload) => status === 500 && payload !== undefined && /\\u0000|\\ud[89a-f][0-9a-f]{2}/i.test(payload),
  },
];

export function knownBugOfExit(exit: UnexpectedExit): KnownBug | undefined {
  return KNOWN_BUGS.find((bug) => bug.exit?.(exit));
}

export function knownBugOfResponse(status: number, body: string, payload: string | undefined): KnownBug | undefined {
  return KNOWN_BUGS.find((bug) => bug.response?.(status, body, payload));
}
