import { randomBytes } from "node:crypto";
import { expect, it } from "vitest";
import { compareApiWithDatabase } from "./api-view-check.js";
import { auditFaultRun, type AuditResult } from "./fault-audit.js";
import { FAULT_DEFAULTS, FAULT_PLAN, runFaultPlan, seededRandom, type DriverTally } from "./fault-driver.js";
import { startFaultFleet, type FaultFleet } from "./fault-fleet.js";
import { checkFaultsLanded } from "./fault-landing.js";
import { jobCounts, workerLeftovers, type WorkerLeftovers } from "./fleet-db.js";
import { startJobSubmitter, type JobSubmitter } from "./job-submitter.js";
import { knownBugOfExit } from "./known-bugs.js";

// Knobs for a local run; CI uses the defaults.
const TOTAL_JOBS = Number(process.env.FAULT_JOBS ?? FAULT_DEFAULTS.jobs);
const WORKERS = Number(process.env.FAULT_WORKERS ?? FAULT_DEFAULTS.workers);
const DEADLINE_SEC = Number(process.env.FAULT_DEADLINE_SEC ?? FAULT_DEFAULTS.deadlineSec);
const SEED = Number(process.env.FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** Every 50th job gets a corrupt video: failures must carry a cause, and media errors never retry. */
const CORRUPT_EVERY = 50;
const B2_PREFIX = "fault-suite";
/** Seconds; short so leases expire and workers go offline within the run. */
const OFFLINE_AFTER_SEC = 4;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => Promise<boolean>, signal: AbortSignal, what: string): Promise<void> {
  while (!signal.aborted) {
    if (await check().catch(() => false)) return;
    await sleep(500);
  }
  throw new Error(`overall deadline (${DEADLINE_SEC}s) reached while waiting for ${what}`);
}

it(
  `loses no job and completes none twice while workers die, the orchestrator and PostgreSQL restart, the API answers 503 and B2 fails (${TOTAL_JOBS} jobs, ${WORKERS} workers)`,
  async () => {
    const t0 = Date.now();
    const log = (line: string) => console.log(`[faults +${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}`);
    const deadline = AbortSignal.timeout(DEADLINE_SEC * 1000);
    const corruptIndexes = new Set(Array.from({ length: TOTAL_JOBS }, (_, i) => i).filter((i) => i % CORRUPT_EVERY === CORRUPT_EVERY / 2));
    const keyPrefix = `fault-${randomBytes(4).toString("hex")}`;
    const problems: string[] = [];
    // Filled in as the run gets there; the report below prints whatever was reached.
    const state: {
      fleet?: FaultFleet;
      submitter?: JobSubmitter;
      driver?: DriverTally;
      audit?: AuditResult;
      leftovers?: WorkerLeftovers;
      apiProblems?: string[];
      landingProblems?: string[];
    } = {};
    log(`seed ${SEED} (FAULT_SEED=${SEED} repeats the fault choices)`);

    const run = async () => {
      const f = (state.fleet = await startFaultFleet({
        workers: WORKERS,
        b2Prefix: B2_PREFIX,
        media: { seconds: 1, width: 64, height: 64 },
        orchestratorEnv: {
          WORKER_OFFLINE_AFTER_SEC: String(OFFLINE_AFTER_SEC),
          LEASE_TTL_SEC: "4",
          HEARTBEAT_INTERVAL_SEC: "0.5",
          REAPER_INTERVAL_SEC: "0.5",
          RETRY_BACKOFF_BASE_SEC: "0.5",
          // B2 outages fail jobs on every worker at once; a long quarantine would idle the fleet.
          QUARANTINE_SEC: "2",
          DATABASE_POOL_MAX: "10",
          LOG_LEVEL: "info",
        },
        workerEnv: {
          BUFFER_POLL_INTERVAL_SEC: "0.5",
          CLAIM_WAIT_MS: "2000",
          ORCHESTRATOR_TIMEOUT_SEC: "3",
          DOWNLOAD_TIMEOUT_SEC: "20",
          DRAIN_GRACE_SEC: "5",
          LOG_LEVEL: "info",
        },
      }));
      log(`fleet up: postgres ${f.pg.url}, orchestrator ${f.orchestrator().url} behind proxy ${f.proxy.url}, ${f.workers().size} workers`);

      const submitter = (state.submitter = startJobSubmitter({
        baseUrl: f.proxy.url,
        apiKey: f.publicApiKey,
        total: TOTAL_JOBS,
        keyPrefix,
        input: (i) => ({ video_url: corruptIndexes.has(i) ? f.media.corruptVideoUrl : f.media.videoUrl, audio_url: f.media.audioUrl }),
        signal: deadline,
      }));
      state.driver = await runFaultPlan({ fleet: f, plan: FAULT_PLAN, submitter, total: TOTAL_JOBS, signal: deadline, random: seededRandom(SEED), log });
      await Promise.race([submitter.done, until(() => Promise.resolve(false), deadline, "every job to be created")]);
      log(`all ${submitter.created().length} jobs created; waiting for every job to end`);
      await until(async () => (await jobCounts(f.pg.url)).terminal >= TOTAL_JOBS, deadline, "every job to end");

      log("every job ended; stopping the workers and letting the reaper settle");
      await f.stopWorkers();
      // Killed workers' rows must go offline and no attempt may stay running once the window passes.
      const settleBy = Date.now() + (OFFLINE_AFTER_SEC + 6) * 1000;
      for (;;) {
        const leftovers = (state.leftovers = await workerLeftovers(f.pg.url));
        if ((leftovers.runningAttempts === 0 && leftovers.busyWorkers.length === 0) || Date.now() > settleBy) break;
        await sleep(500);
      }
      state.audit = await auditFaultRun({
        dbUrl: f.pg.url,
        b2: f.b2,
        b2Prefix: B2_PREFIX,
        total: TOTAL_JOBS,
        keyPrefix,
        submitted: submitter.created(),
        corruptIndexes,
        minSuccessShare: 0.9,
      });
      state.apiProblems = await compareApiWithDatabase({ baseUrl: f.proxy.url, apiKey: f.publicApiKey, dbUrl: f.pg.url });
      state.landingProblems = await checkFaultsLanded({
        dbUrl: f.pg.url,
        plan: FAULT_PLAN,
        events: state.driver.events,
        orchestratorLogs: f.orchestratorLogs(),
        proxyInjected: f.proxy.stats.injected,
        b2Requests: f.b2.requests,
      });
    };

    const body = run();
    body.catch(() => undefined);
    try {
      await Promise.race([
        body,
        new Promise<never>((_, reject) => {
          deadline.addEventListener("abort", () => reject(new Error(`overall deadline (${DEADLINE_SEC}s) reached`)), { once: true });
        }),
      ]);
    } catch (err) {
      problems.push(`run: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      const { fleet, submitter, driver, audit, leftovers } = state;
      if (leftovers && (leftovers.runningAttempts > 0 || leftovers.busyWorkers.length > 0)) {
        problems.push(`stuck_busy: ${leftovers.runningAttempts} attempts still running, busy workers: ${leftovers.busyWorkers.join(", ")}`);
      }
      problems.push(...(audit?.problems ?? []), ...(state.apiProblems ?? []), ...(state.landingProblems ?? []));
      problems.push(...(submitter?.rejections() ?? []).map((r) => `create_rejected: ${r}`));
      const knownBugsHit: string[] = [];
      for (const exit of fleet?.unexpectedExits ?? []) {
        const bug = knownBugOfExit(exit);
        if (bug) knownBugsHit.push(`${exit.what} exited ${exit.code}: KNOWN BUG ${bug.id}: ${bug.summary}`);
        else problems.push(`unexpected_exit: ${exit.what} exited ${exit.code}\n    ${exit.lastLines.join("\n    ")}`);
      }
      const orchestratorLines = fleet?.orchestratorLogs() ?? [];
      const tally = {
        seed: SEED,
        elapsedSec: Math.round((Date.now() - t0) / 1000),
        ...(audit?.tally ?? { jobs: "audit did not run" }),
        workersKilled: driver?.workersKilled,
        workersStarted: driver ? driver.workersStarted + WORKERS : undefined,
        orchestratorRestarts: driver?.orchestratorRestarts,
        postgresRestarts: driver?.postgresRestarts,
        orchestrator503Windows: driver?.unavailableWindows,
        proxy: fleet?.proxy.stats,
        b2FailuresInjected: fleet?.b2.requests.filter((r) => r.injected).length,
        b2UploadsAccepted: fleet?.b2.requests.filter((r) => r.op === "upload" && r.status === 200).length,
        orchestrator5xxLogged: orchestratorLines.filter((l) => l.includes('"request_failed"')).length,
        createRetries: submitter?.retries(),
        faults: driver?.events,
        knownBugsHit,
      };
      console.log(`[faults] tally\n${JSON.stringify(tally, null, 2)}`);
      if (problems.length > 0) console.log(`[faults] problems\n  ${problems.join("\n  ")}`);
      await fleet?.close().catch((err: unknown) => console.log(`[faults] cleanup: ${String(err)}`));
    }
    expect(problems).toEqual([]);
  },
  (DEADLINE_SEC + 120) * 1000,
);
