import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { migratePostgresUrl } from "@fleet/orchestrator";
import { startB2TestServer } from "@fleet/testing/b2-test-server";
import type { B2TestServer } from "@fleet/testing/b2-test-server";
import { startFakeInferenceServer } from "@fleet/testing/fake-inference-server";
import type { FakeInferenceServer } from "@fleet/testing/fake-inference-server";
import { startOrchestratorProcess } from "@fleet/testing/orchestrator-process";
import type { OrchestratorProcess } from "@fleet/testing/orchestrator-process";
import { createTestDatabases } from "@fleet/testing/postgres";
import type { TestDatabase, TestDatabases } from "@fleet/testing/postgres";
import { startWorkerProcess } from "@fleet/testing/worker-process";
import type { WorkerProcess } from "@fleet/testing/worker-process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runFleet } from "../testing/run-fleet.js";

const WORKER_ID = "doctor-gpu-1";

let databases: TestDatabases;
let database: TestDatabase;
let orchestrator: OrchestratorProcess;
let inference: FakeInferenceServer;
let b2: B2TestServer;
let worker: WorkerProcess;
let workDir: string;
/** The worker box's .env: exactly what the running worker was started with. */
let boxEnv: Record<string, string>;

beforeAll(async () => {
  databases = await createTestDatabases({ migrate: migratePostgresUrl, prefix: "fleet_cli_doctor" });
  database = await databases.clone();
  [orchestrator, inference, b2] = await Promise.all([
    startOrchestratorProcess({ databaseUrl: database.url }),
    startFakeInferenceServer(),
    startB2TestServer(),
  ]);
  workDir = await mkdtemp(join(tmpdir(), "fleet-doctor-box-"));
  boxEnv = {
    BUFFER_ORCHESTRATOR_BASE_URL: orchestrator.url,
    INTERNAL_API_KEY: orchestrator.internalApiKey,
    BUFFER_WORKER_ID: WORKER_ID,
    INFERENCE_DRIVER: "http",
    INFERENCE_URL: inference.url,
    STORAGE: "b2",
    ...b2.env(),
    WORK_DIR: workDir,
  };
  worker = await startWorkerProcess({
    workDir,
    keepWorkDir: true,
    env: { ...boxEnv, BUFFER_POLL_INTERVAL_SEC: "0.5", LOG_LEVEL: "info" },
  });
  await worker.waitForLog("buffer_worker_heartbeat_ok");
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await Promise.all([orchestrator?.stop(), inference?.close(), b2?.close()]);
  await database?.drop();
  await databases?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
}, 60_000);

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((ok) => server.close(() => ok()));
  return port;
}

function doctor(overrides: Record<string, string> = {}, args: string[] = []) {
  return runFleet(["doctor", "--min-free-gb", "0.01", ...args], { ...boxEnv, ...overrides });
}

function line(stdout: string, check: string): string {
  return stdout.split("\n").find((l) => l.slice(2).startsWith(check)) ?? `(no line for ${check})`;
}

describe("fleet doctor", () => {
  it("passes every check on a correctly configured worker box", async () => {
    const run = await doctor();
    expect(run.stdout).toContain("all checks passed");
    expect(run.code).toBe(0);
    expect(line(run.stdout, "heartbeat fresh")).toMatch(/^✓ heartbeat fresh\s+doctor-gpu-1 online, status \w+, last heartbeat \d+s ago/);
    expect(line(run.stdout, "inference ready")).toMatch(/^✓ inference ready\s+.*\/health-check READY/);
    expect(line(run.stdout, "storage credentials")).toMatch(new RegExp(`^✓ storage credentials\\s+B2 key authorized, bucket ${b2.bucketName} writable`));
    expect(line(run.stdout, "work dir")).toMatch(/^✓ work dir\s+.+ writable, [\d.]+ GB free/);
  });

  it("reads the box's settings from --env-file, as docker run --env-file does", async () => {
    const file = join(workDir, "box.env");
    await writeFile(file, Object.entries(boxEnv).map(([k, v]) => `${k}=${v}`).join("\n") + "\n");
    const run = await runFleet(["doctor", "--min-free-gb", "0.01", "--env-file", file], {});
    expect(run.stdout).toContain("all checks passed");
    expect(run.code).toBe(0);
  });

  it("names the key check when the orchestrator refuses INTERNAL_API_KEY", async () => {
    const run = await doctor({ INTERNAL_API_KEY: "a-wrong-internal-key" });
    expect(run.code).toBe(1);
    expect(line(run.stdout, "key accepted")).toMatch(/^✗ key accepted\s+the orchestrator refused INTERNAL_API_KEY \(401 unauthorized/);
    expect(run.stdout).toContain("fix: copy INTERNAL_API_KEY from the orchestrator's .env");
    expect(line(run.stdout, "heartbeat fresh")).toMatch(/^- heartbeat fresh\s+skipped/);
    expect(run.stdout.trimEnd().split("\n").at(-1)).toBe("1 check failed: key accepted");
  });

  it("on a box with only its WORKER_TOKEN, skips the key and heartbeat checks with the reason instead of failing them", async () => {
    const run = await doctor({ INTERNAL_API_KEY: "", WORKER_TOKEN: "fw_00000000_not-checked-here" });
    expect(run.code, run.stdout).toBe(0);
    expect(line(run.stdout, "key accepted")).toMatch(/^- key accepted\s+skipped: this box uses WORKER_TOKEN/);
    expect(line(run.stdout, "heartbeat fresh")).toMatch(/^- heartbeat fresh\s+skipped: reading the worker list needs INTERNAL_API_KEY/);
    const neither = await doctor({ INTERNAL_API_KEY: "" });
    expect(neither.code).toBe(1);
    expect(line(neither.stdout, "key accepted")).toMatch(/^✗ key accepted\s+neither WORKER_TOKEN nor INTERNAL_API_KEY is set/);
  });

  it("names the reachability check when the orchestrator is down", async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const run = await doctor({ BUFFER_ORCHESTRATOR_BASE_URL: url });
    expect(run.code).toBe(1);
    expect(line(run.stdout, "orchestrator reachable")).toMatch(/^✗ orchestrator reachable\s+cannot reach the orchestrator at .+: ECONNREFUSED/);
    expect(run.stdout).toContain(`curl ${url}/healthz`);
    expect(run.stdout.trimEnd().split("\n").at(-1)).toBe("1 check failed: orchestrator reachable");
  });

  it("names the heartbeat check for a worker id the orchestrator has never heard from", async () => {
    const run = await doctor({ BUFFER_WORKER_ID: "buffer-orch-local-9" });
    expect(run.code).toBe(1);
    expect(line(run.stdout, "heartbeat fresh")).toMatch(/^✗ heartbeat fresh\s+no heartbeat from buffer-orch-local-9 has ever reached the orchestrator/);
    expect(run.stdout).toContain("grep buffer_worker");
  });

  it("names the inference check while the container is STARTING or after SETUP_FAILED", async () => {
    try {
      inference.setHealth("STARTING");
      const starting = await doctor();
      expect(starting.code).toBe(1);
      expect(line(starting.stdout, "inference ready")).toMatch(/^✗ inference ready\s+.+ is STARTING.*: models are still loading/);
      expect(starting.stdout.trimEnd().split("\n").at(-1)).toBe("1 check failed: inference ready");

      inference.setHealth("SETUP_FAILED");
      const failed = await doctor();
      expect(failed.code).toBe(1);
      expect(line(failed.stdout, "inference ready")).toMatch(/^✗ inference ready\s+.+ SETUP_FAILED/);
    } finally {
      inference.setHealth(null);
    }
  });

  it("names the inference check when nothing listens at INFERENCE_URL", async () => {
    const run = await doctor({ INFERENCE_URL: `http://127.0.0.1:${await closedPort()}` });
    expect(run.code).toBe(1);
    expect(line(run.stdout, "inference ready")).toMatch(/^✗ inference ready\s+nothing answers at .+ \(ECONNREFUSED\)/);
  });

  it("names the storage check when B2 refuses the key or the key belongs to another bucket", async () => {
    const badKey = await doctor({ B2_APP_KEY: "not-the-app-key" });
    expect(badKey.code).toBe(1);
    expect(line(badKey.stdout, "storage credentials")).toMatch(/^✗ storage credentials\s+B2 refused B2_KEY_ID\/B2_APP_KEY \(401/);

    const otherBucket = await doctor({ B2_BUCKET_NAME: "someone-elses-bucket" });
    expect(otherBucket.code).toBe(1);
    expect(line(otherBucket.stdout, "storage credentials")).toMatch(
      new RegExp(`^✗ storage credentials\\s+the key is restricted to bucket ${b2.bucketName}, not B2_BUCKET_NAME=someone-elses-bucket`),
    );
  });

  it("names the storage check when the key lacks a capability the worker needs or its name prefix misses B2_PREFIX", async () => {
    const writeOnly = await startB2TestServer({ capabilities: ["listBuckets", "writeFiles"] });
    const prefixed = await startB2TestServer({ namePrefix: "elsewhere/" });
    try {
      const caps = await doctor(writeOnly.env());
      expect(caps.code).toBe(1);
      expect(line(caps.stdout, "storage credentials")).toMatch(/^✗ storage credentials\s+the key lacks listFiles, readFiles \(has: listBuckets, writeFiles\)/);
      const prefix = await doctor({ ...prefixed.env(), B2_PREFIX: "avatar/outputs" });
      expect(prefix.code).toBe(1);
      expect(line(prefix.stdout, "storage credentials")).toMatch(/^✗ storage credentials\s+the key only allows names starting with elsewhere\/, but outputs go to avatar\/outputs\//);
      const inside = await doctor({ ...prefixed.env(), B2_PREFIX: "elsewhere/outputs" });
      expect(line(inside.stdout, "storage credentials")).toMatch(/^✓ storage credentials\s+B2 key authorized, bucket \S+ writable; allPrivate: output links are authorized/);
    } finally {
      await Promise.all([writeOnly.close(), prefixed.close()]);
    }
  });

  it("says which link mode a public bucket gives, and refuses a private bucket whose key cannot share", async () => {
    const pub = await startB2TestServer({ bucketType: "allPublic" });
    const noShare = await startB2TestServer({ capabilities: ["listBuckets", "listFiles", "readFiles", "writeFiles"] });
    try {
      expect(line((await doctor(pub.env())).stdout, "storage credentials")).toMatch(/^✓ storage credentials\s+.*allPublic: output links are plain/);
      const run = await doctor(noShare.env());
      expect(run.code).toBe(1);
      expect(line(run.stdout, "storage credentials")).toMatch(/^✗ storage credentials\s+bucket \S+ is allPrivate and the key lacks shareFiles/);
    } finally {
      await Promise.all([pub.close(), noShare.close()]);
    }
  });

  it("fails the settings check with the worker's own words when the worker would refuse to start", async () => {
    const run = await doctor({ INFERENCE_URL: "" });
    expect(run.code).toBe(1);
    expect(line(run.stdout, "worker settings")).toMatch(/^✗ worker settings\s+invalid worker configuration: INFERENCE_URL: required when INFERENCE_DRIVER=http/);
  });

  it("checks the original image's /hc for the generate driver", async () => {
    const run = await doctor({ INFERENCE_DRIVER: "generate" });
    expect(line(run.stdout, "inference ready")).toMatch(/^✓ inference ready\s+.+\/hc ok \(original \/generate image\)/);
    expect(run.code).toBe(0);
  });

  it("asks B2 whether the bucket exists when the key is not restricted to one", async () => {
    const unrestricted = await startB2TestServer({ restrictedToBucket: false });
    try {
      const good = await doctor(unrestricted.env());
      expect(line(good.stdout, "storage credentials")).toMatch(/^✓ storage credentials\s+B2 key authorized/);
      const missing = await doctor({ ...unrestricted.env(), B2_BUCKET_NAME: "no-such-bucket" });
      expect(missing.code).toBe(1);
      expect(line(missing.stdout, "storage credentials")).toMatch(/^✗ storage credentials\s+bucket no-such-bucket does not exist in this account/);
    } finally {
      await unrestricted.close();
    }
  });

  it("prints every check as JSON with --json and still exits non-zero", async () => {
    const run = await doctor({ INTERNAL_API_KEY: "a-wrong-internal-key" }, ["--json"]);
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as { ok: boolean; checks: { name: string; status: string }[] };
    expect(report.ok).toBe(false);
    expect(report.checks.map((c) => `${c.name}:${c.status}`)).toEqual([
      "orchestrator reachable:ok",
      "key accepted:fail",
      "heartbeat fresh:skip",
      "inference ready:ok",
      "ffmpeg/ffprobe:ok",
      "storage credentials:ok",
      "work dir:ok",
    ]);
  });

  it("on a GPU box (FLEET_GPU_BOX), checks every GPU and names the one whose worker and engine are missing", async () => {
    const inferencePort = Number(new URL(inference.url).port);
    const layout = {
      box: "doctor-box",
      gpus: [
        { gpu: 0, worker_id: WORKER_ID, worker_port: worker.port, inference_port: inferencePort, work_dir: workDir },
        { gpu: 1, worker_id: "doctor-box-gpu1", worker_port: await closedPort(), inference_port: await closedPort(), work_dir: join(workDir, "gpu1") },
      ],
    };
    const run = await doctor({ FLEET_GPU_BOX: JSON.stringify(layout) });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`GPU box doctor-box: gpu0 (${WORKER_ID}), gpu1 (doctor-box-gpu1)`);
    expect(line(run.stdout, "gpu0 heartbeat")).toMatch(new RegExp(`^✓ gpu0 heartbeat\\s+${WORKER_ID} online`));
    expect(line(run.stdout, "gpu0 inference")).toMatch(/^✓ gpu0 inference\s+doctor-gpu-1's engine: .+\/health-check READY/);
    expect(line(run.stdout, "gpu1 heartbeat")).toMatch(/^✗ gpu1 heartbeat\s+no heartbeat from doctor-box-gpu1/);
    expect(line(run.stdout, "gpu1 inference")).toMatch(/^✗ gpu1 inference\s+doctor-box-gpu1's engine: nothing answers at .+ \(ECONNREFUSED\)/);
    expect(run.stdout).toContain("logs inference-gpu1");
    // The per-GPU lines replace the single-worker heartbeat and engine lines.
    expect(run.stdout).not.toMatch(/^. (heartbeat fresh|inference ready)/m);
    expect(run.stdout.trimEnd().split("\n").at(-1)).toBe("2 checks failed: gpu1 heartbeat, gpu1 inference");
  });

  it("refuses a FLEET_GPU_BOX that is not a box layout, as a usage error", async () => {
    const run = await doctor({ FLEET_GPU_BOX: '{"box":"x","gpus":[]}' });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/FLEET_GPU_BOX is not a GPU box layout/);
  });
});
