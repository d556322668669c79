import type { HeartbeatRequest, HeartbeatResponse } from "@fleet/contract";
import type { z } from "zod";
import type { Logger } from "./logger.js";
import type { OrchestratorClient } from "./orchestrator-client.js";
import { backoffDelay, jitter } from "./util/backoff.js";

export interface HeartbeatLoopOptions {
  client: OrchestratorClient;
  workerId: string;
  intervalMs: number;
  timeoutMs: number;
  log: Logger;
  /** Built fresh for every beat, so `busy`, `active_jobs` and engine health are current. */
  buildBody: () => z.input<typeof HeartbeatRequest>;
  onReply: (reply: HeartbeatResponse) => void;
  /** Called when `healthy` flips, so the claim loop can wake at once on recovery. */
  onHealthChange?: (healthy: boolean) => void;
  onBeat?: (outcome: { ok: boolean; statusCode: number | null }) => void;
}

export interface HeartbeatSnapshot {
  healthy: boolean;
  lastAcceptedAt: number | null;
  consecutiveFailures: number;
  lastError: string | null;
  lastStatusCode: number | null;
}

export interface HeartbeatLoop {
  snapshot(): HeartbeatSnapshot;
  /** Sends one beat now (after any beat in flight): used for the `draining` and final beats. */
  beatNow(): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * The heartbeat, on its own setTimeout chain: no job, download or upload ever sits between two
 * beats (the original sent none while /generate ran, §8.4–5). Every reply is checked: anything
 * but a parsed 2xx is an error, logged with status and body, retried with jittered backoff, and
 * `healthy` stays false (the claim loop claims nothing) until a beat is accepted again.
 */
export function startHeartbeatLoop(opts: HeartbeatLoopOptions): HeartbeatLoop {
  const { log, workerId } = opts;
  const state: HeartbeatSnapshot = {
    healthy: false,
    lastAcceptedAt: null,
    consecutiveFailures: 0,
    lastError: null,
    lastStatusCode: null,
  };
  // Never slower than every 30 s while failing (the offline window), never faster than the interval.
  const maxBackoffMs = Math.max(opts.intervalMs, Math.min(30_000, opts.intervalMs * 8));
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let inFlight: Promise<boolean> | null = null;
  let everAccepted = false;

  async function beat(): Promise<boolean> {
    const body = opts.buildBody();
    const result = await opts.client.heartbeat(workerId, body, { timeoutMs: opts.timeoutMs });
    opts.onBeat?.({ ok: result.ok, statusCode: result.statusCode });
    if (result.ok) {
      const wasFailing = state.consecutiveFailures > 0;
      const failures = state.consecutiveFailures;
      state.lastAcceptedAt = Date.now();
      state.consecutiveFailures = 0;
      state.lastError = null;
      state.lastStatusCode = result.statusCode;
      if (wasFailing) log.info({ workerId, failedBeats: failures }, "buffer_worker_heartbeat_recovered");
      else if (!everAccepted) log.info({ workerId, status: body.status }, "buffer_worker_heartbeat_ok");
      else log.debug({ workerId, status: body.status }, "buffer_worker_heartbeat_ok");
      everAccepted = true;
      setHealthy(true);
      try {
        opts.onReply(result.value);
      } catch (err) {
        log.error({ err, workerId }, "buffer_worker_heartbeat_reply_error");
      }
      return true;
    }
    state.consecutiveFailures += 1;
    state.lastStatusCode = result.statusCode;
    state.lastError = result.statusCode === null ? result.message : `HTTP ${result.statusCode}: ${result.bodyExcerpt}`;
    const fields = {
      workerId,
      statusCode: result.statusCode,
      body: result.bodyExcerpt,
      error: result.message,
      consecutiveFailures: state.consecutiveFailures,
    };
    if (result.statusCode === 401 || result.statusCode === 403) {
      // A wrong key never fixes itself: say so on every attempt, louder than a transient error.
      log.error(
        { ...fields, configurationError: true, hint: "the orchestrator rejected INTERNAL_API_KEY: check the key and BUFFER_ORCHESTRATOR_BASE_URL" },
        "buffer_worker_loop_error",
      );
    } else if (result.statusCode === 404) {
      log.error(
        { ...fields, configurationError: true, hint: "heartbeat route not found: check BUFFER_ORCHESTRATOR_BASE_URL" },
        "buffer_worker_loop_error",
      );
    } else {
      log.warn(fields, "buffer_worker_loop_error");
    }
    setHealthy(false);
    return false;
  }

  function setHealthy(healthy: boolean) {
    if (state.healthy === healthy) return;
    state.healthy = healthy;
    opts.onHealthChange?.(healthy);
  }

  function runOnce(): Promise<boolean> {
    const p = beat().catch((err: unknown) => {
      // beat() handles every expected failure itself; this is a bug, but the chain must go on.
      log.error({ err, workerId }, "buffer_worker_loop_error");
      state.consecutiveFailures += 1;
      setHealthy(false);
      return false;
    });
    inFlight = p;
    void p.finally(() => {
      if (inFlight === p) inFlight = null;
    });
    return p;
  }

  function schedule(delayMs: number) {
    if (stopped) return;
    timer = setTimeout(() => {
      timer = null;
      void runOnce().then(() => schedule(nextDelay()));
    }, delayMs);
  }

  function nextDelay(): number {
    return state.consecutiveFailures === 0
      ? jitter(opts.intervalMs)
      : backoffDelay(state.consecutiveFailures, opts.intervalMs, maxBackoffMs);
  }

  schedule(0);

  return {
    snapshot: () => ({ ...state }),
    async beatNow() {
      if (inFlight) await inFlight;
      return runOnce();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      if (inFlight) await inFlight;
    },
  };
}
