import type { Executor } from "../db/client.js";
import { GroupCommit } from "./group-commit.js";
import { completeSucceededAttempts, type SuccessReport } from "./complete-succeeded-attempts.js";

/**
 * Success reports closed in groups (see `GroupCommit`): under load, the reports that arrive while
 * one statement runs share the next one, its round trip and its commit. Pass `complete` to
 * `reportAttemptStatus`; a report this path does not apply takes that function's transaction.
 */
export class SuccessBatcher {
  readonly #group: GroupCommit<SuccessReport, boolean>;

  constructor(db: Executor) {
    this.#group = new GroupCommit((reports) => completeSucceededAttempts(db, reports));
  }

  readonly complete = (report: SuccessReport): Promise<boolean> => this.#group.submit(report);
}
