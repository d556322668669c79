import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig } from "@fleet/worker";
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
    await writeFile(
      file,
      "BUFFER_WORKER_ID=buffer-orch-local-2\nBUFFER_ORCHESTRATOR_BASE_URL=https://203.0.113.12\nSTORAGE=b2\nB2_KEY_ID=k\nB2_APP_KEY=a\nB2_BUCKET_NAME=b\n",
    );
    const cfg = loadWorkerBoxConfig({ BUFFER_WORKER_ID: "from-shell", ORCHESTRATOR_BASE_URL: "https://other" }, file);
    expect(cfg.workerId).toBe("buffer-orch-local-2");
    expect(cfg.orchestratorUrl).toBe("https://203.0.113.12");
    expect(cfg.storage).toBe("b2");
  });

  it("refuses what the worker refuses, with the worker's own message", () => {
    expect(() => loadWorkerBoxConfig({ STORAGE: "b2", B2_KEY_ID: "k" })).toThrow(ConfigError);
    expect(() => loadWorkerBoxConfig({ STORAGE: "b2", B2_KEY_ID: "k" })).toThrow(/B2_APP_KEY: required when STORAGE=b2/);
  });

  it("names a missing --env-file instead of silently checking the shell's settings", () => {
    expect(() => loadWorkerBoxConfig({}, join(dir, "nope.env"))).toThrow(/nope\.env does not exist/);
  });
});

describe("the worker id fleet doctor checks", () => {
  const box = { BUFFER_ORCHESTRATOR_BASE_URL: "http://127.0.0.1:8080", INTERNAL_API_KEY: "k" };
  // [what the row shows, env, hostname, the id the worker heartbeats with (null: it does not)]
  const rows: [string, Record<string, string>, string, string | null][] = [
    ["an explicit id", { BUFFER_WORKER_ID: "gpu-7" }, "box", "gpu-7"],
    ["an explicit id beats WORKER_MODE", { BUFFER_WORKER_ID: "gpu-7", WORKER_MODE: "buffer" }, "box", "gpu-7"],
    ["an empty id counts as unset", { BUFFER_WORKER_ID: "", WORKER_MODE: "buffer" }, "box", "buffer-box"],
    ["a blank id counts as unset", { BUFFER_WORKER_ID: "  ", WORKER_MODE: "buffer" }, "box", "buffer-box"],
    ["WORKER_MODE=buffer", { WORKER_MODE: "buffer" }, "gpu-box-1", "buffer-gpu-box-1"],
    ["WORKER_MODE in capitals", { WORKER_MODE: "BUFFER" }, "box", "buffer-box"],
    ["WORKER_MODE in mixed case", { WORKER_MODE: "Buffer" }, "box", "buffer-box"],
    ["another WORKER_MODE", { WORKER_MODE: "generate" }, "box", null],
    ["an empty WORKER_MODE", { WORKER_MODE: "" }, "box", null],
    ["neither set", {}, "box", null],
    ["a hostname with spaces and symbols", { WORKER_MODE: "buffer" }, "GPU Box #1", "buffer-GPU-Box--1"],
    ["a hostname with non-ASCII letters", { WORKER_MODE: "buffer" }, "nœud_gpu", "buffer-n-ud_gpu"],
    ["a hostname with the allowed punctuation", { WORKER_MODE: "buffer" }, "a.b:c@d-e", "buffer-a.b:c@d-e"],
    ["a hostname longer than an id may be", { WORKER_MODE: "buffer" }, "h".repeat(200), `buffer-${"h".repeat(121)}`],
  ];

  it.each(rows)("agrees with the worker for %s", (_what, env, hostname, expected) => {
    const facts = { hostname, tmpdir: dir };
    const worker = loadConfig({ ...box, ...env }, facts);
    expect(worker.buffer?.workerId ?? null).toBe(expected);
    expect(loadWorkerBoxConfig({ ...box, ...env }, undefined, facts).workerId ?? null).toBe(expected);
  });
});

describe("loadLocalOutputMappings", () => {
  it("lists the quick start workers' output directories, or nothing without a launcher state file", async () => {
    expect(loadLocalOutputMappings(dir)).toEqual([]);
    await writeQuickStart("http://127.0.0.1:8080", process.pid);
    expect(loadLocalOutputMappings(dir)).toEqual([{ url: "http://127.0.0.1:8000/outputs", dir: "/data/out" }]);
  });
});
