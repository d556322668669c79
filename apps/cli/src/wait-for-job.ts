import { setTimeout as sleep } from "node:timers/promises";
import { TERMINAL_JOB_STATUSES } from "@fleet/contract";
import type { JobView } from "@fleet/contract";
import { FleetConnectionError } from "./fleet-api-error.js";
import type { FleetClient } from "./fleet-client.js";

export interface WaitForJobOptions {
  signal?: AbortSignal;
  onUpdate?: (job: JobView) => void;
  pollMs?: number;
  /** How long the orchestrator may be unreachable (a restart) before waiting gives up. */
  unreachableForMs?: number;
}

export function isTerminal(job: JobView): boolean {
  return (TERMINAL_JOB_STATUSES as readonly string[]).includes(job.status);
}

/** Polls the job until it ends. The public API has no push channel; one GET a second is cheap. */
export async function waitForJob(client: FleetClient, id: string, opts: WaitForJobOptions = {}): Promise<JobView> {
  const pollMs = opts.pollMs ?? 1000;
  const unreachableForMs = opts.unreachableForMs ?? 60_000;
  let unreachableSince: number | null = null;
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      const job = await client.call("getJob", { params: { id } });
      unreachableSince = null;
      opts.onUpdate?.(job);
      if (isTerminal(job)) return job;
    } catch (err) {
      if (!(err instanceof FleetConnectionError)) throw err;
      unreachableSince ??= Date.now();
      if (Date.now() - unreachableSince > unreachableForMs) throw err;
    }
    await sleep(pollMs, undefined, { signal: opts.signal });
  }
}
