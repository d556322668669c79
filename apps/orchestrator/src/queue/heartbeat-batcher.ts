import type { HeartbeatRequest } from "@fleet/contract";
import type { Executor } from "../db/client.js";
import { recordHeartbeats, type Heartbeat, type HeartbeatOutcome, type LeaseTtls } from "./record-heartbeat.js";

/** Bounds one statement's parameter and lock set; the rest waits for the next flush. */
const MAX_BATCH = 500;

interface Pending {
  beat: Heartbeat;
  waiters: { resolve: (o: HeartbeatOutcome) => void; reject: (e: unknown) => void }[];
}

/**
 * Group commit for heartbeats: one flush in flight at a time, and the next batch is whatever
 * arrived meanwhile — no timer, so a lone heartbeat is written at once and batches only grow
 * under load, where they pay: one statement, one round trip, one commit for all of them.
 * Two beats of one worker in a batch keep the later body; both callers get its reply.
 */
export class HeartbeatBatcher {
  #pending = new Map<string, Pending>();
  #flushing = false;

  constructor(
    private readonly db: Executor,
    private readonly ttl: LeaseTtls,
  ) {}

  record(workerId: string, body: HeartbeatRequest, main?: Heartbeat["main"]): Promise<HeartbeatOutcome> {
    const beat: Heartbeat = main ? { workerId, body, main } : { workerId, body };
    return new Promise((resolve, reject) => {
      const entry = this.#pending.get(workerId);
      if (entry) {
        entry.beat = beat;
        entry.waiters.push({ resolve, reject });
      } else {
        this.#pending.set(workerId, { beat, waiters: [{ resolve, reject }] });
      }
      if (!this.#flushing) void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#pending.size > 0) {
        const batch = [...this.#pending].slice(0, MAX_BATCH);
        for (const [workerId] of batch) this.#pending.delete(workerId);
        try {
          const outcomes = await recordHeartbeats(
            this.db,
            batch.map(([, p]) => p.beat),
            this.ttl,
          );
          for (const [workerId, p] of batch) {
            const outcome = outcomes.get(workerId);
            for (const w of p.waiters) {
              if (outcome) w.resolve(outcome);
              else w.reject(new Error(`heartbeat of ${workerId} was not recorded`));
            }
          }
        } catch (err) {
          // The database is down or the statement failed: every beat of the batch fails alike,
          // and each worker retries with its own backoff.
          for (const [, p] of batch) for (const w of p.waiters) w.reject(err);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }
}
