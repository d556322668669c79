import type { Executor } from "../db/client.js";
import { DEADLOCK_DETECTED, sqlState, UNIQUE_VIOLATION } from "../db/sql-state.js";
import { claimJobBatch, UNDECIDED, type BatchClaimAnswer } from "./claim-job-batch.js";
import { claimNextJob, type ClaimedJobRow, type ClaimOptions } from "./claim-next-job.js";
import { GroupCommit } from "./group-commit.js";

/** One claim's outcome inside a batch, so one claim's error does not fail the others. */
type Outcome = { job: ClaimedJobRow | null } | { error: unknown };

async function settle(claim: Promise<ClaimedJobRow | null>): Promise<Outcome> {
  try {
    return { job: await claim };
  } catch (error) {
    return { error };
  }
}

/**
 * Claims made in groups (see `GroupCommit`): a lone claim runs `claimNextJob` as before; claims
 * submitted in the same event-loop turn, or while a statement runs, share the next one,
 * `claimJobBatch`. What the batch leaves
 * undecided, and every claim of a batch that lost a race (a capacity slot taken by a claim on
 * another orchestrator, a deadlock with one), is then claimed one by one, each with its own answer or
 * error, so a batch never answers differently from the lone claims it stands for.
 */
export class ClaimBatcher {
  readonly #group: GroupCommit<ClaimOptions, Outcome>;

  constructor(private readonly db: Executor) {
    this.#group = new GroupCommit((claims) => this.#flush(claims));
  }

  readonly claim = async (options: ClaimOptions): Promise<ClaimedJobRow | null> => {
    const outcome = await this.#group.submit(options);
    if ("error" in outcome) throw outcome.error;
    return outcome.job;
  };

  async #flush(claims: ClaimOptions[]): Promise<Outcome[]> {
    const [only] = claims;
    if (claims.length === 1 && only) return [await settle(claimNextJob(this.db, only))];
    let answers: BatchClaimAnswer[];
    try {
      answers = await claimJobBatch(this.db, claims);
    } catch (err) {
      // Only the races a lone claim settles by itself; anything else is every claim's error.
      const code = sqlState(err);
      if (code !== UNIQUE_VIOLATION && code !== DEADLOCK_DETECTED) throw err;
      answers = claims.map(() => UNDECIDED);
    }
    const outcomes: Outcome[] = [];
    for (const [i, answer] of answers.entries()) {
      outcomes.push(answer === UNDECIDED ? await settle(claimNextJob(this.db, claims[i]!)) : { job: answer });
    }
    return outcomes;
  }
}
