import type { EngineHealth } from "@fleet/contract";
import type { InferenceDriver } from "./inference/inference-driver.js";
import type { Logger } from "./logger.js";
import type { OutputStorage } from "./storage/output-storage.js";

/** `unchecked` until the first check answers: not ready, but not an error to report either. */
export type StorageState = "unchecked" | "ready" | "failed";

export interface Readiness {
  engine: EngineHealth;
  storage: { kind: string; state: StorageState; detail: string | null };
}

export interface EngineMonitor {
  current(): Readiness;
  /** Engine ready (or busy with our own jobs) and storage usable: a claim may be made. */
  readyToClaim(runningJobs: number): boolean;
  /** Stops probing and waits for a probe in flight (it may be creating the output directory). */
  stop(): Promise<void>;
}

/**
 * Probes the inference engine and the output store on their own timer, so the claim loop can
 * refuse work while either is down (a job claimed into a dead engine only fails) and
 * the heartbeat carries the engine's state. State changes are logged once each.
 */
export function startEngineMonitor(opts: {
  driver: InferenceDriver;
  storage: OutputStorage;
  intervalMs: number;
  log: Logger;
  busy: () => boolean;
  onChange: () => void;
}): EngineMonitor {
  const { log } = opts;
  let engine: EngineHealth = { driver: opts.driver.name, state: "starting", detail: "not probed yet" };
  let storage: Readiness["storage"] = { kind: opts.storage.kind, state: "unchecked", detail: null };
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  const controller = new AbortController();

  async function probe() {
    const health = await opts.driver
      .health({ signal: controller.signal, busy: opts.busy() })
      .catch((err: unknown): EngineHealth => ({ driver: opts.driver.name, state: "error", detail: err instanceof Error ? err.message : String(err) }));
    if (health.state !== engine.state) {
      const level = health.state === "ready" || health.state === "busy" || health.state === "starting" ? "info" : "warn";
      log[level]({ driver: health.driver, state: health.state, previous: engine.state, detail: health.detail, lipSync: health.lip_sync }, "inference_engine_state");
      if (health.state === "ready" && health.lip_sync === false) {
        log.warn({ driver: health.driver, detail: health.detail }, "inference_engine_no_lip_sync");
      }
    }
    const changed = health.state !== engine.state;
    engine = health;
    // Credentials do not rot between jobs: once the store answered, stop asking every beat.
    if (storage.state !== "ready" && !stopped) {
      try {
        await opts.storage.check(controller.signal);
        storage = { kind: opts.storage.kind, state: "ready", detail: null };
        log.info({ storage: opts.storage.kind }, "storage_ready");
        opts.onChange();
      } catch (err) {
        const detail = err instanceof Error ? err.message : String(err);
        if (detail !== storage.detail) log.error({ storage: opts.storage.kind, err }, "storage_not_ready");
        storage = { kind: opts.storage.kind, state: "failed", detail };
      }
    }
    if (changed) opts.onChange();
  }

  let inFlight: Promise<void> | null = null;
  function schedule(ms: number) {
    if (stopped) return;
    timer = setTimeout(() => {
      inFlight = probe().finally(() => {
        inFlight = null;
        schedule(opts.intervalMs);
      });
    }, ms);
  }
  schedule(0);

  return {
    current: () => ({ engine, storage }),
    readyToClaim(runningJobs) {
      if (storage.state !== "ready") return false;
      return engine.state === "ready" || (engine.state === "busy" && runningJobs > 0);
    },
    async stop() {
      stopped = true;
      controller.abort();
      if (timer) clearTimeout(timer);
      await inFlight;
    },
  };
}
