import { freePort } from "@fleet/testing/free-port";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { Fleet, e2eTest } from "../test-support/fleet-harness.js";

/**
 * Run by scripts/check-observability.sh (vitest.observability.config.ts), not by `pnpm test`:
 * it needs a real Prometheus (Debian's `prometheus` package, or PROMETHEUS_BIN), which the
 * README's two commands do not install.
 */
const repoDir = fileURLToPath(new URL("../../../../", import.meta.url));
const PROMETHEUS = process.env.PROMETHEUS_BIN ?? "/usr/bin/prometheus";

interface PromAlert {
  labels: Record<string, string>;
  state: "pending" | "firing";
}

async function alerts(base: string): Promise<PromAlert[]> {
  const res = await fetch(`${base}/api/v1/alerts`);
  const body = (await res.json()) as { data: { alerts: PromAlert[] } };
  return body.data.alerts;
}

async function waitFor<T>(what: string, probe: () => Promise<T | null>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

e2eTest("a real Prometheus with Fleet's alert rules fires FleetWorkerOffline for a worker whose heartbeats stop", async ({ databaseUrl }) => {
  // A short offline threshold and 1 s scrape/evaluation: the rules are the shipped ones, only
  // their `for:` durations are shortened so the test takes seconds, not minutes.
  const fleet = await Fleet.start(databaseUrl, { WORKER_OFFLINE_AFTER_SEC: "3" });
  const dir = await mkdtemp(path.join(tmpdir(), "fleet-prometheus-"));
  let prometheus: ChildProcess | null = null;
  const output: string[] = [];
  try {
    const worker = await fleet.startWorker("prom-w1");
    await worker.waitForLog("buffer_worker_heartbeat_ok", { timeoutMs: 60_000 });

    const rules = await readFile(path.join(repoDir, "docker/observability/alerts.yml"), "utf8");
    await writeFile(path.join(dir, "alerts.yml"), rules.replace(/^(\s+)for: \S+$/gm, "$1for: 2s"));
    const orchestrator = new URL(fleet.orchestrator.url).host;
    const workerTarget = new URL(worker.url).host;
    await writeFile(
      path.join(dir, "prometheus.yml"),
      [
        "global: { scrape_interval: 1s, evaluation_interval: 1s }",
        `rule_files: ["${path.join(dir, "alerts.yml")}"]`,
        "scrape_configs:",
        `  - { job_name: fleet-orchestrator, static_configs: [{ targets: ["${orchestrator}"] }] }`,
        `  - { job_name: fleet-worker, static_configs: [{ targets: ["${workerTarget}"], labels: { worker_id: prom-w1 } }] }`,
        "",
      ].join("\n"),
    );
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      PROMETHEUS,
      [`--config.file=${path.join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${path.join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    prometheus.stdout?.on("data", (c: Buffer) => output.push(c.toString()));
    prometheus.stderr?.on("data", (c: Buffer) => output.push(c.toString()));

    // Both targets scraped, and the worker seen online through the orchestrator's gauge.
    await waitFor(
      "both targets up",
      async () => {
        const res = await fetch(`${base}/api/v1/targets`);
        const body = (await res.json()) as { data: { activeTargets: Array<{ health: string }> } };
        return body.data.activeTargets.length === 2 && body.data.activeTargets.every((t) => t.health === "up") ? true : null;
      },
      60_000,
    );
    await waitFor(
      "prom-w1 online in Prometheus",
      async () => {
        const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent('fleet_buffer_worker_online{worker_id="prom-w1"}')}`);
        const body = (await res.json()) as { data: { result: Array<{ value: [number, string] }> } };
        return body.data.result[0]?.value[1] === "1" ? true : null;
      },
      60_000,
    );
    expect((await alerts(base)).filter((a) => a.labels.alertname === "FleetWorkerOffline")).toEqual([]);

    // The worker dies: no more heartbeats (and no more scrapes of its own /metrics).
    await worker.kill();
    const fired = await waitFor(
      "FleetWorkerOffline firing for prom-w1",
      async () => (await alerts(base)).find((a) => a.labels.alertname === "FleetWorkerOffline" && a.labels.worker_id === "prom-w1" && a.state === "firing") ?? null,
      90_000,
    );
    expect(fired.labels).toMatchObject({ severity: "page", worker_id: "prom-w1", job: "fleet-orchestrator" });
  } catch (err) {
    throw new Error(`${(err as Error).message}\nprometheus output:\n${output.join("").slice(-3000)}`, { cause: err });
  } finally {
    if (prometheus?.pid !== undefined && prometheus.exitCode === null) {
      const exited = new Promise((r) => prometheus?.once("exit", r));
      process.kill(prometheus.pid, "SIGTERM");
      await exited;
    }
    await fleet.close();
    await rm(dir, { recursive: true, force: true });
  }
});
