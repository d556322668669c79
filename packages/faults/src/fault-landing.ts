import type { B2RequestRecord } from "@fleet/testing/b2-test-server";
import type { FaultEvent, FaultStep } from "./fault-driver.js";
import { queryOnce } from "./fleet-db.js";

export interface FaultLandingInput {
  dbUrl: string;
  plan: readonly FaultStep[];
  events: readonly FaultEvent[];
  orchestratorLogs: readonly string[];
  proxyInjected: number;
  b2Requests: readonly B2RequestRecord[];
}

/**
 * Proof that each planned fault happened, read from its effects rather than from the driver's own
 * counters: a kill that killed nothing, a restart that restarted nothing or a failure window that
 * failed nothing would otherwise leave the suite green while testing a calm fleet.
 */
export async function checkFaultsLanded(input: FaultLandingInput): Promise<string[]> {
  const problems: string[] = [];
  const { plan, events } = input;
  const kinds = events.map((e) => e.step);
  if (kinds.join(",") !== plan.map((s) => s.kind).join(",")) {
    problems.push(`fault_not_run: planned ${plan.map((s) => s.kind).join(",")}, ran ${kinds.join(",")}`);
  }

  // Kills: each victim's row went offline, and each victim that held work had that work taken
  // back by the reaper (an interrupted attempt); a no-op kill would have let it finish instead.
  const killed = events.flatMap((e) => e.killed ?? []);
  const holding = events.flatMap((e) => e.killedHolding ?? []);
  const plannedKills = plan.reduce((n, s) => n + (s.kind === "kill_workers" ? s.count : 0), 0);
  if (killed.length < plannedKills) problems.push(`kills_missing: ${killed.length} of ${plannedKills} planned kills happened`);
  if (plannedKills > 0 && holding.length === 0) problems.push("kills_idle: no killed worker held a job, so no lease was ever taken back");
  if (killed.length > 0) {
    const rows = await queryOnce<{ worker_id: string; status: string; interrupted: string }>(
      input.dbUrl,
      `select w.worker_id, w.status,
              (select count(*) from buffer_jobs b where b.worker_id = w.worker_id and b.status = 'interrupted') as interrupted
         from buffer_workers w where w.worker_id = any($1::text[])`,
      [killed],
    );
    const byId = new Map(rows.map((r) => [r.worker_id, r]));
    for (const id of killed) {
      const row = byId.get(id);
      if (row?.status !== "offline") problems.push(`killed_worker_alive: ${id} is ${row?.status ?? "missing"}, not offline`);
    }
    for (const id of holding) {
      if (Number(byId.get(id)?.interrupted ?? 0) === 0) problems.push(`kill_without_interruption: ${id} held a job when killed, but none of its attempts was interrupted`);
    }
  }

  const plannedRestarts = plan.filter((s) => s.kind === "restart_orchestrator").length;
  const starts = input.orchestratorLogs.filter((l) => l.includes('"orchestrator_started"')).length;
  if (starts !== plannedRestarts + 1) problems.push(`orchestrator_restarts: ${starts} orchestrator starts logged, want ${plannedRestarts + 1}`);

  const pgRestart = events.find((e) => e.step === "restart_postgres");
  if (pgRestart) {
    const [row] = await queryOnce<{ started: Date }>(input.dbUrl, "select pg_postmaster_start_time() as started");
    if (!row || row.started.getTime() < pgRestart.at) problems.push(`postgres_not_restarted: server started at ${row?.started.toISOString()}, fault at ${new Date(pgRestart.at).toISOString()}`);
  }

  if (events.some((e) => e.step === "orchestrator_503") && input.proxyInjected === 0) {
    problems.push("unavailable_window_empty: the proxy answered no request with the injected 503");
  }

  const b2Fault = events.find((e) => e.step === "b2_upload_failures");
  if (b2Fault) {
    const after = input.b2Requests.filter((r) => r.at >= b2Fault.at);
    if (!after.some((r) => r.injected)) problems.push("b2_window_empty: no B2 request was answered by an injected failure");
    if (!after.some((r) => r.status === 401)) problems.push("b2_tokens_not_expired: no request was refused with an expired token");
    if (!after.some((r) => r.op === "authorize" && r.status === 200)) problems.push("b2_no_reauthorization: no worker authorized again after its token expired");
  }
  return problems;
}
