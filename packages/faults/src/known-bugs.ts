import type { UnexpectedExit } from "./fault-fleet.js";

export interface KnownBug {
  id: string;
  /** Where, why, the fix, and the regression test that turns red once it is fixed. */
  summary: string;
  /** A process exit this bug explains (fault suite). */
  exit?(exit: UnexpectedExit): boolean;
  /** A response this bug explains (fuzz), given the request that was sent. */
  response?(req: { url: string; payload?: string | Buffer | undefined }, res: { status: number; body: string }): boolean;
}

/**
 * Bugs these suites found in code this package does not own, each pinned by a deterministic
 * `it.fails` test in known-bugs.test.ts. Only an exact match of one is reported as "known" instead
 * of failing a run; anything else fails it. Delete an entry, and its `it.fails`, once fixed.
 */
export const KNOWN_BUGS: readonly KnownBug[] = [];

export function knownBugOfExit(exit: UnexpectedExit): KnownBug | undefined {
  return KNOWN_BUGS.find((bug) => bug.exit?.(exit));
}

export function knownBugOfResponse(req: { url: string; payload?: string | Buffer | undefined }, res: { status: number; body: string }): KnownBug | undefined {
  return KNOWN_BUGS.find((bug) => bug.response?.(req, res));
}
