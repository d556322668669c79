import type { ClaimRefusal } from "@fleet/contract";
import type { Database } from "../db/client.js";
import { sqlState, UNIQUE_VIOLATION } from "../db/sql-state.js";
import type { ClaimBatcher } from "../queue/claim-batcher.js";
import type { ClaimedJobRow, ClaimOptions } from "../queue/claim-next-job.js";
import { findClaimRefusal } from "../queue/find-claim-refusal.js";
import type { WakeSignal } from "@fleet/runtime";

/** Re-check this often even without a NOTIFY (backoff retries whose run_after passed). */
const SAFETY_TICK_MS = 1000;

/** unique_violation: a racing claim of the same worker took the same capacity slot. */
const isSlotRace = (err: unknown): boolean => sqlState(err) === UNIQUE_VIOLATION;

/** Each round of a slot race lets at least one claimer through, so a few rounds settle it. */
const MAX_SLOT_RACE_ROUNDS = 8;

/**
 * A claim that lost a capacity-slot race to another claim of the same worker is retried at once:
 * the next statement sees the winner's slot and picks the next free one (or finds none).
 */
async function claimRetryingSlotRaces(claims: ClaimBatcher, options: ClaimOptions): Promise<ClaimedJobRow | null> {
  for (let round = 1; ; round++) {
    try {
      return await claims.claim(options);
    } catch (err) {
      if (!isSlotRace(err) || round >= MAX_SLOT_RACE_ROUNDS) {
        if (isSlotRace(err)) return null;
        throw err;
      }
    }
  }
}

/**
 * The claim long-poll: claim; if the only reason for nothing is "no job", wait for a wake-up
 * and try again until `waitMs` is spent or the client goes away. Refusals about the worker
 * itself (unknown, offline, draining, quarantined, full) answer at once: waiting cannot fix them.
 */
export async function claimWithWait(
  db: Database,
  claims: ClaimBatcher,
  wake: WakeSignal,
  options: ClaimOptions & { waitMs: number; signal?: AbortSignal },
): Promise<{ job: ClaimedJobRow | null; reason?: ClaimRefusal }> {
  const deadline = Date.now() + options.waitMs;
  for (;;) {
    const seen = wake.generation;
    const job = await claimRetryingSlotRaces(claims, options);
    if (job) return { job };
    const reason = await findClaimRefusal(db, options.workerId, options.offlineAfterSec);
    const remaining = deadline - Date.now();
    if (reason !== "no_job" || remaining <= 0 || options.signal?.aborted || wake.closed) return { job: null, reason };
    await wake.wait(Math.min(remaining, SAFETY_TICK_MS), options.signal, seen);
    if (options.signal?.aborted || wake.closed) return { job: null, reason };
  }
}
