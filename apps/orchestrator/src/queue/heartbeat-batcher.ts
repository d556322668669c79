import type { HeartbeatRequest } from "@fleet/contract";
import type { Executor } from "../db/client.js";
import { GroupCommit } from "./group-commit.js";
import { recordHeartbeats, type Heartbeat, type HeartbeatOutcome, type LeaseTtls } from "./record-heartbeat.js";

/**
 * Heartbeats written in groups (see `GroupCommit`). Two beats of one worker in a batch keep the
 * later body and both callers get its reply: the statement's ON CONFLICT cannot touch a row twice.
 */
export class HeartbeatBatcher {
  readonly #group: GroupCommit<Heartbeat, HeartbeatOutcome | undefined>;

  constructor(db: Executor, ttl: LeaseTtls) {
    this.#group = new GroupCommit(async (beats) => {
      const latest = new Map(beats.map((beat) => [beat.workerId, beat]));
      const outcomes = await recordHeartbeats(db, [...latest.values()], ttl);
      return beats.map((beat) => outcomes.get(beat.workerId));
    });
  }

  async record(workerId: string, body: HeartbeatRequest, main?: Heartbeat["main"]): Promise<HeartbeatOutcome> {
    const outcome = await this.#group.submit(main ? { workerId, body, main } : { workerId, body });
    if (!outcome) throw new Error(`heartbeat of ${workerId} was not recorded`);
    return outcome;
  }
}
