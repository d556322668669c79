import type { FaultFleet } from "./fault-fleet.js";
import { busyWorkerIds, jobCounts, type JobCounts } from "./fleet-db.js";
import type { JobSubmitter } from "./job-submitter.js";

export type FaultStep =
  | { kind: "kill_workers"; count: number }
  | { kind: "restart_orchestrator"; mode: "graceful" | "crash" }
  | { kind: "restart_postgres"; downMs: number }
  | { kind: "orchestrator_503"; ms: number }
  | { kind: "b2_upload_failures"; ms: number };

/** The suite's defaults; README.md states them and `docs-claims.test.ts` holds it to them. */
export const FAULT_DEFAULTS = { jobs: 300, workers: 6, deadlineSec: 480 } as const;

/** Kills spread between the bigger faults, so each of those lands on a fleet that just lost a worker. */
export const FAULT_PLAN: readonly FaultStep[] = [
  { kind: "kill_workers", count: 1 },
  { kind: "restart_orchestrator", mode: "graceful" },
  { kind: "kill_workers", count: 1 },
  { kind: "orchestrator_503", ms: 10_000 },
  { kind: "restart_postgres", downMs: 1_500 },
  { kind: "kill_workers", count: 2 },
  { kind: "b2_upload_failures", ms: 8_000 },
  { kind: "restart_orchestrator", mode: "crash" },
  { kind: "kill_workers", count: 1 },
];

export interface FaultEvent {
  step: FaultStep["kind"];
  /** Wall-clock time the fault was injected (ms since the epoch), to look for its effects after. */
  at: number;
  /** Seconds since the driver started. */
  atSec: number;
  /** Jobs in flight when the fault hit (null when the database could not be asked). */
  inFlight: Pick<JobCounts, "running" | "queued"> | null;
  detail?: string;
  /** kill_workers: every victim, and those that held a running attempt when they were killed. */
  killed?: string[];
  killedHolding?: string[];
}

export interface DriverTally {
  workersKilled: number;
  workersStarted: number;
  orchestratorRestarts: number;
  postgresRestarts: number;
  unavailableWindows: number;
  b2FaultWindows: number;
  events: FaultEvent[];
}

export interface RunFaultPlanOptions {
  fleet: FaultFleet;
  plan: readonly FaultStep[];
  submitter: JobSubmitter;
  total: number;
  signal: AbortSignal;
  random: () => number;
  log: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it holds; database errors (PostgreSQL may be restarting) just mean "not yet". */
async function waitUntil(check: () => Promise<boolean>, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    if (await check().catch(() => false)) return;
    await sleep(300);
  }
  throw new Error("fault driver stopped: overall deadline reached");
}

function pick<T>(items: readonly T[], n: number, random: () => number): T[] {
  const pool = [...items];
  const out: T[] = [];
  while (out.length < n && pool.length > 0) out.push(...pool.splice(Math.floor(random() * pool.length), 1));
  return out;
}

/**
 * Injects the plan's faults while jobs flow. Jobs are released in waves, one more wave with each
 * fault, and a fault waits until half the previous wave is done: so every fault lands on running
 * and queued work however fast or slow the machine is, and the last jobs cannot finish before
 * the last fault.
 */
export async function runFaultPlan(opts: RunFaultPlanOptions): Promise<DriverTally> {
  const { fleet, plan, submitter, total, signal, random, log } = opts;
  const dbUrl = fleet.pg.url;
  const started = Date.now();
  const tally: DriverTally = {
    workersKilled: 0,
    workersStarted: 0,
    orchestratorRestarts: 0,
    postgresRestarts: 0,
    unavailableWindows: 0,
    b2FaultWindows: 0,
    events: [],
  };
  const waveSize = Math.ceil(total / (plan.length + 1));
  submitter.allowUpTo(waveSize);

  for (const [i, step] of plan.entries()) {
    const released = Math.min(total, (i + 1) * waveSize);
    await waitUntil(async () => {
      if (submitter.created().length < released) return false;
      const counts = await jobCounts(dbUrl);
      return counts.total - counts.terminal <= waveSize / 2;
    }, signal);
    submitter.allowUpTo((i + 2) * waveSize);
    const inFlight = await jobCounts(dbUrl).then(({ running, queued }) => ({ running, queued }), () => null);
    const event: FaultEvent = { step: step.kind, at: Date.now(), atSec: Math.round((Date.now() - started) / 100) / 10, inFlight };
    tally.events.push(event);
    log(`fault ${i + 1}/${plan.length}: ${JSON.stringify(step)} at ${event.atSec}s, in flight ${JSON.stringify(inFlight)}`);

    switch (step.kind) {
      case "kill_workers": {
        const alive = [...fleet.workers().keys()];
        const busy = new Set(await busyWorkerIds(dbUrl).catch(() => [] as string[]));
        const holding = alive.filter((id) => busy.has(id));
        const victims = pick(holding.length >= step.count ? holding : alive, step.count, random);
        await Promise.all(victims.map((id) => fleet.killWorker(id)));
        tally.workersKilled += victims.length;
        event.killed = victims;
        event.killedHolding = victims.filter((v) => busy.has(v));
        const replacements = await Promise.all(victims.map(() => fleet.addWorker()));
        tally.workersStarted += replacements.length;
        event.detail = `killed ${victims.join(", ")} (holding a job: ${victims.filter((v) => busy.has(v)).length}); started ${replacements.join(", ")}`;
        break;
      }
      case "restart_orchestrator":
        await fleet.restartOrchestrator(step.mode);
        tally.orchestratorRestarts++;
        event.detail = `${step.mode}; back on ${fleet.orchestrator().url}`;
        break;
      case "restart_postgres":
        await fleet.restartPostgres(step.downMs);
        tally.postgresRestarts++;
        break;
      case "orchestrator_503":
        fleet.proxy.failFor(step.ms, 503);
        tally.unavailableWindows++;
        await sleep(step.ms);
        break;
      case "b2_upload_failures":
        // Expired tokens first (a renewal must follow), then every upload answered 503 for a while.
        fleet.b2.expireTokens();
        fleet.b2.failFor(step.ms, { status: 503, op: ["get_upload_url", "upload"] });
        tally.b2FaultWindows++;
        await sleep(step.ms);
        break;
    }
    if (event.detail) log(`  ${event.detail}`);
  }
  submitter.allowUpTo(total);
  return tally;
}

/** A small seeded generator, so a failing run can be repeated with FAULT_SEED. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
