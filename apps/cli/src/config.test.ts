import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_FLEET_URL, loadConnectionConfig, loadLocalOutputMappings, loadWorkerBoxConfig } from "./config.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "fleet-cli-config-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeQuickStart(url: string, pid: number): Promise<void> {
  await writeFile(join(dir, "dev-keys.json"), JSON.stringify({ internal_api_key: "dev-internal-x", public_api_key: "dev-public-y" }));
  await writeFile(
    join(dir, "local-fleet.json"),
    JSON.stringify({ url, pid, workers: [{ worker_id: "local-cpu-1", outputs_url: "http://127.0.0.1:8000/outputs", outputs_dir: "/data/out" }] }),
  );
}

describe("loadConnectionConfig", () => {
  it("prefers flags over env and never mixes in the quick start's keys once anything is set", async () => {
    await writeQuickStart("http://127.0.0.1:9999", process.pid);
    const cfg = loadConnectionConfig({ FLEET_URL: "http://env:1", FLEET_API_KEY: "env-key" }, { url: "http://flag:2" }, dir);
    expect(cfg).toEqual({ url: "http://flag:2", apiKey: "env-key", internalApiKey: undefined, source: "flags-or-env" });
  });

  it("uses the quick start's keys and the running launcher's URL when nothing is configured", async () => {
    await writeQuickStart("http://127.0.0.1:9999", process.pid);
    const cfg = loadConnectionConfig({}, {}, dir);
    expect(cfg).toEqual({ url: "http://127.0.0.1:9999", apiKey: "dev-public-y", internalApiKey: "dev-internal-x", source: "quick-start" });
  });

  it("falls back to the default URL when the launcher that wrote the state file is gone", async () => {
    await writeQuickStart("http://127.0.0.1:9999", 2 ** 22 + 12_345);
    expect(loadConnectionConfig({}, {}, dir).url).toBe(DEFAULT_FLEET_URL);
  });

  it("treats blank values as unset, as docker compose does", () => {
    const cfg = loadConnectionConfig({ FLEET_URL: "  ", INTERNAL_API_KEY: "k" }, {}, dir);
    expect(cfg.url).toBe(DEFAULT_FLEET_URL);
    expect(cfg.internalApiKey).toBe("k");
  });
});

describe("loadWorkerBoxConfig", () => {
  it("reads the worker's names with their fallbacks and defaults", () => {
    const cfg = loadWorkerBoxConfig({ ORCHESTRATOR_BASE_URL: "https://203.0.113.10", WORKER_MODE: "buffer", WORK_DIR: "/w" });
    expect(cfg.orchestratorUrl).toBe("https://203.0.113.10");
    expect(cfg.workerId).toMatch(/^buffer-/);
    expect(cfg.inferenceDriver).toBe("ffmpeg");
    expect(cfg.storage).toBe("local");
    expect(cfg.localStorageDir).toBe("/w/outputs");
  });

  it("lets an --env-file override the shell, like docker run --env-file", async () => {
    const file = join(dir, ".env");
    await writeFile(file, "BUFFER_WORKER_ID=buffer-orch-local-2\nBUFFER_ORCHESTRATOR_BASE_URL=https://203.0.113.12\nSTORAGE=b2\n");
    const cfg = loadWorkerBoxConfig({ BUFFER_WORKER_ID: "from-shell", ORCHESTRATOR_BASE_URL: "https://other" }, file);
    expect(cfg.workerId).toBe("buffer-orch-local-2");
    expect(cfg.orchestratorUrl).toBe("https://203.0.113.12");
    expect(cfg.storage).toBe("b2");
  });

  it("names a missing --env-file instead of silently checking the shell's settings", () => {
    expect(() => loadWorkerBoxConfig({}, join(dir, "nope.env"))).toThrow(/nope\.env does not exist/);
  });
});

describe("loadLocalOutputMappings", () => {
  it("lists the quick start workers' output directories, or nothing without a launcher state file", async () => {
    expect(loadLocalOutputMappings(dir)).toEqual([]);
    await writeQuickStart("http://127.0.0.1:8080", process.pid);
    expect(loadLocalOutputMappings(dir)).toEqual([{ url: "http://127.0.0.1:8000/outputs", dir: "/data/out" }]);
  });
});
