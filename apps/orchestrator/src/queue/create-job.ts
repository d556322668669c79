import type { CreateJobRequest } from "@fleet/contract";
import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";
import type { JobRow } from "../views/job-view.js";
import { jsonb } from "./sql-values.js";

export type CreateJobResult =
  | { kind: "created"; job: JobRow }
  | { kind: "existing"; job: JobRow }
  | { kind: "idempotency_conflict" };

/**
 * Inserts a queued job (the insert trigger wakes long-polling claims). With an Idempotency-Key,
 * `on conflict do nothing` waits for a concurrent insert of the same key to commit, so two
 * racing retries end with one job: the loser reads the winner's row and compares body hashes.
 * Keys are unique per client, so one client's key never finds (or blocks) another client's job.
 */
export async function createJob(
  db: Executor,
  input: CreateJobRequest,
  options: { clientId: string; maxAttempts: number; idempotencyKey?: string; requestHash?: string },
): Promise<CreateJobResult> {
  const inserted = await queryRows<JobRow>(
    db,
    sql`insert into jobs (video_url, audio_url, aspect_ratio, resolution, params, webhook_url, metadata,
                          priority, max_attempts, client_id, idempotency_key, request_hash, video_sha256)
        values (${input.video_url}, ${input.audio_url}, ${input.aspect_ratio}, ${input.resolution},
                ${jsonb(input.params)}, ${input.webhook_url ?? null}, ${jsonb(input.metadata)},
                ${input.priority}, ${options.maxAttempts}, ${options.clientId}, ${options.idempotencyKey ?? null},
                ${options.requestHash ?? null}, ${input.video_sha256 ?? null})
        on conflict (client_id, idempotency_key) do nothing
        returning *`,
  );
  if (inserted[0]) return { kind: "created", job: inserted[0] };
  const [existing] = await queryRows<JobRow>(
    db,
    sql`select * from jobs where client_id = ${options.clientId} and idempotency_key = ${options.idempotencyKey ?? null}`,
  );
  if (!existing || existing.request_hash !== (options.requestHash ?? null)) return { kind: "idempotency_conflict" };
  return { kind: "existing", job: existing };
}
