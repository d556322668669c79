import type { EngineHealth } from "@fleet/contract";
import { describe, expect, it } from "vitest";
import type { EngineMonitor } from "./engine-monitor.js";
import type { JobRunner } from "./job-runner.js";
import { Metrics } from "./metrics.js";
import { registerWorkerGauges } from "./worker-status.js";

function scrape(engine: EngineHealth): string {
  const metrics = new Metrics();
  const monitor: EngineMonitor = {
    current: () => ({ engine, storage: { kind: "local", state: "ready", detail: null } }),
    readyToClaim: () => true,
    stop: () => Promise.resolve(),
  };
  const runner = { capacity: 1, running: () => 0 } as Pick<JobRunner, "capacity" | "running"> as JobRunner;
  registerWorkerGauges(metrics, { workerId: "w", version: "v", bufferLoop: "running", driverName: "http", runner, outbox: null, monitor, heartbeat: () => null, draining: () => false });
  return metrics.render();
}

describe("registerWorkerGauges", () => {
  it("exports the engine's avatar cache size and hit rate from its last health check", () => {
    const text = scrape({
      driver: "http",
      state: "ready",
      avatar_cache: { bytes: 5_000_000, max_bytes: 20 * 2 ** 30, entries: 2, hits: 3, misses: 1, hit_rate: 0.75 },
    });
    expect(text).toContain('fleet_worker_engine_avatar_cache_bytes{driver="http"} 5000000');
    expect(text).toContain(`fleet_worker_engine_avatar_cache_max_bytes{driver="http"} ${20 * 2 ** 30}`);
    expect(text).toContain('fleet_worker_engine_avatar_cache_entries{driver="http"} 2');
    expect(text).toContain('fleet_worker_engine_avatar_cache_hit_ratio{driver="http"} 0.75');
    expect(text).toContain('fleet_worker_engine_avatar_cache_hits{driver="http"} 3');
    expect(text).toContain('fleet_worker_engine_avatar_cache_misses{driver="http"} 1');
  });

  it("exports no cache series for an engine without a cache, and no ratio before the first lookup", () => {
    expect(scrape({ driver: "ffmpeg", state: "ready" })).not.toMatch(/^fleet_worker_engine_avatar_cache_\w+\{/m);
    const empty = scrape({ driver: "http", state: "ready", avatar_cache: { bytes: 0, max_bytes: 1, entries: 0, hits: 0, misses: 0, hit_rate: null } });
    expect(empty).toContain('fleet_worker_engine_avatar_cache_entries{driver="http"} 0');
    expect(empty).not.toMatch(/^fleet_worker_engine_avatar_cache_hit_ratio\{/m);
  });
});
