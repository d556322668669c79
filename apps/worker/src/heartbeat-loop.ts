import type { HeartbeatReply, HeartbeatRequest, OrchestratorProtocol } from "@fleet/contract";
import type { z } from "zod";
import type { Logger } from "./logger.js";
import { credentialRejected, type OrchestratorClient } from "./orchestrator-client.js";
import { backoffDelay, jitter } from "./util/backoff.js";

export interface HeartbeatLoopOptions {
  client: OrchestratorClient;
  workerId: string;
  /** Capped by the interval and lease a Fleet orchestrator's reply names (the original's names none). */
  intervalMs: number;
  timeoutMs: number;
  log: Logger;
  /** Built fresh for every beat, so `busy`, `active_jobs` and engine health are current. */
  buildBody: () => z.input<typeof HeartbeatRequest>;
  onReply: (reply: HeartbeatReply) => void;
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
  /** Which orchestrator answered the last accepted beat; null before the first. */
  protocol: OrchestratorProtocol | null;
  /** The interval in force: the configured one, capped by what the orchestrator's reply names. */
  intervalMs: number;
}

export interface HeartbeatLoop {
  snapshot(): HeartbeatSnapshot;
  /** Sends one beat now (after any beat in flight): used for the `draining` and final beats. */
  beatNow(): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * The heartbeat, on its own setTimeout chain: no job, download or upload ever sits between two
 * beats, so a long job never looks like a dead worker. Every reply is checked: anything
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
    protocol: null,
    intervalMs: opts.intervalMs,
  };
  // Never slower than every 30 s while failing (the offline window), never faster than the interval.
  const maxBackoffMs = () => Math.max(state.intervalMs, Math.min(30_000, state.intervalMs * 8));
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
      adoptTiming(result.value);
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
      err: result.error,
      consecutiveFailures: state.consecutiveFailures,
    };
    if (credentialRejected(result)) {
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

  function adoptTiming(reply: HeartbeatReply) {
    if (reply.protocol !== state.protocol) {
      // Said once (and again only if a different orchestrator answers): the first thing to check
      // when a mixed fleet misbehaves during a migration.
      log.info(
        { workerId, protocol: reply.protocol, heartbeatIntervalSec: reply.heartbeat_interval_sec, leaseTtlSec: reply.lease_ttl_sec },
        "orchestrator_protocol_detected",
      );
      state.protocol = reply.protocol;
    }
    const intervalMs = heartbeatIntervalFor(reply, opts.intervalMs);
    if (intervalMs !== state.intervalMs) {
      log.info({ workerId, intervalMs, previousIntervalMs: state.intervalMs }, "buffer_worker_heartbeat_interval_set");
      state.intervalMs = intervalMs;
    }
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
      ? jitter(state.intervalMs)
      : backoffDelay(state.consecutiveFailures, state.intervalMs, maxBackoffMs());
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

/**
 * The orchestrator knows its lease TTL and offline window, so its interval caps the configured
 * one (a worker set to beat faster keeps doing so). Leases are renewed only by beats, so at least
 * three beats fit in one lease: a single lost beat never costs a running job. The orchestrator's
 * numbers are bounded to 0.25–60 s so a bad reply can neither flood it nor silence a worker.
 */
export function heartbeatIntervalFor(reply: Pick<HeartbeatReply, "heartbeat_interval_sec" | "lease_ttl_sec">, configuredMs: number): number {
  const bounded = (ms: number) => Math.round(Math.min(60_000, Math.max(250, ms)));
  let ms = configuredMs;
  if (reply.heartbeat_interval_sec !== undefined) ms = Math.min(ms, bounded(reply.heartbeat_interval_sec * 1000));
  if (reply.lease_ttl_sec !== undefined) ms = Math.min(ms, bounded((reply.lease_ttl_sec * 1000) / 3));
  return ms;
}
