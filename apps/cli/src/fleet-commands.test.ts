import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ListWorkersResponse } from "@fleet/contract";
import type { WorkerView } from "@fleet/contract";
import { migratePostgresUrl } from "@fleet/orchestrator";
import { makeCorruptFile, makeTestAudio, makeTestVideo, probeMedia } from "@fleet/testing/media";
import { startOrchestratorProcess } from "@fleet/testing/orchestrator-process";
import type { OrchestratorProcess } from "@fleet/testing/orchestrator-process";
import { createTestDatabases } from "@fleet/testing/postgres";
import type { TestDatabase, TestDatabases } from "@fleet/testing/postgres";
import { startWorkerProcess } from "@fleet/testing/worker-process";
import type { WorkerProcess } from "@fleet/testing/worker-process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runFleet } from "./testing/run-fleet.js";

const WORKER_ID = "cli-test-cpu-1";

let databases: TestDatabases;
let database: TestDatabase;
let orchestrator: OrchestratorProcess;
let worker: WorkerProcess;
let mediaDir: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  databases = await createTestDatabases({ migrate: migratePostgresUrl, prefix: "fleet_cli" });
  database = await databases.clone();
  orchestrator = await startOrchestratorProcess({ databaseUrl: database.url });
  env = { FLEET_URL: orchestrator.url, FLEET_API_KEY: orchestrator.publicApiKey, INTERNAL_API_KEY: orchestrator.internalApiKey };
  worker = await startWorkerProcess({
    orchestratorUrl: orchestrator.url,
    internalApiKey: orchestrator.internalApiKey,
    workerId: WORKER_ID,
    env: { BUFFER_POLL_INTERVAL_SEC: "0.5", CLAIM_WAIT_MS: "1000", INFERENCE_DRIVER: "ffmpeg", STORAGE: "local", LOG_LEVEL: "info" },
  });
  await worker.waitForLog("buffer_worker_heartbeat_ok");
  // The first heartbeats say the engine is "starting" and carry no system facts yet (the worker
  // gathers them in the background); the table test wants the settled state.
  await waitForWorker((w) => w.online && w.engine?.state === "ready" && w.system !== null && w.system !== undefined);
  mediaDir = await mkdtemp(join(tmpdir(), "fleet-cli-media-"));
  await Promise.all([
    makeTestVideo(join(mediaDir, "face.mp4"), { seconds: 2 }),
    makeTestAudio(join(mediaDir, "voice.wav"), { seconds: 3 }),
    makeCorruptFile(join(mediaDir, "broken.mp4")),
  ]);
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await orchestrator?.stop();
  await database?.drop();
  await databases?.close();
  if (mediaDir) await rm(mediaDir, { recursive: true, force: true });
}, 60_000);

async function waitForWorker(accept: (w: WorkerView) => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await runFleet(["workers", "--json"], env);
    const workers = run.code === 0 ? ListWorkersResponse.shape.workers.parse(JSON.parse(run.stdout)) : [];
    const w = workers.find((x) => x.worker_id === WORKER_ID);
    if (w !== undefined && accept(w)) return;
    if (Date.now() > deadline) throw new Error(`worker never reached the expected state: ${JSON.stringify(w)}`);
    await sleep(200);
  }
}

/** A port nothing listens on: bound and released, so a connection is refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((ok) => server.close(() => ok()));
  return port;
}

function outputUrl(stdout: string): string {
  const match = /^output: (\S+)$/m.exec(stdout);
  if (match?.[1] === undefined) throw new Error(`no output line in:\n${stdout}`);
  return match[1];
}

describe("fleet workers", () => {
  it("shows the heartbeating worker online with its heartbeat age, engine and running jobs", async () => {
    const run = await runFleet(["workers"], env);
    expect(run.code).toBe(0);
    const row = run.stdout.split("\n").find((l) => l.startsWith(WORKER_ID));
    expect(row).toMatch(/^cli-test-cpu-1\s+idle\s+buffer\s+yes\s+\d+s ago\s+\S+\s+0\/1\s+ffmpeg ready, no lip-sync/);
    expect(run.stdout).toMatch(/^WORKER\s+STATUS\s+TIER\s+ONLINE\s+HEARTBEAT\s+GPU\s+RUNNING/);
    expect(run.stdout).toContain("1 of 1 online");
    // Grouped by the box the heartbeat's system facts name (this machine's hostname).
    expect(run.stdout.split("\n")).toContain(`box ${hostname()}: 1 GPU, all online`);
  });

  it("prints the contract's worker views with --json", async () => {
    const run = await runFleet(["workers", "--json"], env);
    expect(run.code).toBe(0);
    const workers = ListWorkersResponse.shape.workers.parse(JSON.parse(run.stdout));
    expect(workers.find((w) => w.worker_id === WORKER_ID)?.online).toBe(true);
  });

  it("names the error code and request id when the key is wrong, and exits 1", async () => {
    const run = await runFleet(["workers", "--internal-key", "not-the-key"], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/401 unauthorized: .+ \(request id [\w-]+\)/);
  });

  it("says the orchestrator cannot be reached when nothing listens at the URL", async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const run = await runFleet(["workers", "--url", url], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`cannot reach the orchestrator at ${url}: ECONNREFUSED`);
  });

  it("exits 2 for a usage error without calling the orchestrator", async () => {
    const run = await runFleet(["jobs", "--limit", "zero"], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--limit must be an integer");
  });
});

describe("fleet submit", () => {
  it("serves local files, waits with progress lines and prints a playable output", async () => {
    const run = await runFleet(["submit", "--video", join(mediaDir, "face.mp4"), "--audio", join(mediaDir, "voice.wav"), "--wait"], env);
    expect(run.stderr).toContain("serving local inputs at http://127.0.0.1:");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^job [0-9a-f-]{36} queued$/m);
    expect(run.stdout).toMatch(/^100%\s+succeeded on cli-test-cpu-1/m);
    const probe = await probeMedia(outputUrl(run.stdout));
    expect(probe.hasVideo && probe.hasAudio).toBe(true);
    expect(probe.durationSec).toBeGreaterThan(2.5);
  }, 90_000);

  it("exits 1 with the job's structured error when the job fails", async () => {
    const run = await runFleet(["submit", "--video", join(mediaDir, "broken.mp4"), "--audio", join(mediaDir, "voice.wav"), "--wait"], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/job [0-9a-f-]{36} failed: media_error at \w+: /);
  }, 90_000);

  it("refuses local files without --wait: they are served only while fleet waits", async () => {
    const run = await runFleet(["submit", "--video", join(mediaDir, "face.mp4"), "--audio", join(mediaDir, "voice.wav")], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("add --wait");
  });
});

describe("fleet drain, jobs, job, cancel, undrain", () => {
  it("drains the worker so a new job stays queued, lists and cancels it, then undrains", async () => {
    // The beat after the previous test's job says idle; the table below must not race it.
    await waitForWorker((w) => w.status === "idle");
    const drained = await runFleet(["drain", WORKER_ID], env);
    expect(drained.code).toBe(0);
    expect(drained.stdout).toContain(`worker ${WORKER_ID}: drain requested`);
    const table = await runFleet(["workers"], env);
    expect(table.stdout).toMatch(/cli-test-cpu-1\s+(draining|idle \(drain requested\))\s+buffer\s+yes/);

    const submitted = await runFleet(
      ["submit", "--video", "http://127.0.0.1:9/never.mp4", "--audio", "http://127.0.0.1:9/never.wav", "--aspect-ratio", "9:16", "--json"],
      env,
    );
    expect(submitted.code).toBe(0);
    const job = JSON.parse(submitted.stdout) as { id: string; status: string };
    expect(job.status).toBe("queued");

    const queued = await runFleet(["jobs", "--status", "queued"], env);
    expect(queued.stdout).toMatch(new RegExp(`^${job.id}\\s+queued\\s+0%`, "m"));
    const shown = await runFleet(["job", job.id], env);
    expect(shown.stdout).toMatch(/^status:\s+queued$/m);
    expect(shown.stdout).toMatch(/^format:\s+9:16, 512x512$/m);

    const cancelled = await runFleet(["cancel", job.id], env);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toBe(`job ${job.id}: now cancelled\n`);

    const undrained = await runFleet(["undrain", WORKER_ID], env);
    expect(undrained.code).toBe(0);
    const after = ListWorkersResponse.shape.workers.parse(JSON.parse((await runFleet(["workers", "--json"], env)).stdout));
    expect(after.find((w) => w.worker_id === WORKER_ID)?.drain_requested).toBe(false);
  }, 60_000);

  it("cancels the job on Ctrl-C while waiting, since the inputs it served vanish with it", async () => {
    await runFleet(["drain", WORKER_ID], env);
    try {
      const controller = new AbortController();
      const running = runFleet(
        ["submit", "--video", join(mediaDir, "face.mp4"), "--audio", join(mediaDir, "voice.wav"), "--wait"],
        env,
        { signal: controller.signal },
      );
      // Interrupt once the job exists: the drained worker leaves it queued.
      let queuedId: string | undefined;
      for (let i = 0; i < 100 && queuedId === undefined; i++) {
        await sleep(100);
        const list = JSON.parse((await runFleet(["jobs", "--status", "queued", "--json"], env)).stdout) as { id: string }[];
        queuedId = list[0]?.id;
      }
      controller.abort();
      const run = await running;
      expect(run.code).toBe(130);
      expect(run.stderr).toContain(`interrupted: job ${queuedId} cancelled`);
      const shown = await runFleet(["job", queuedId ?? "", "--json"], env);
      expect((JSON.parse(shown.stdout) as { status: string }).status).toBe("cancelled");
    } finally {
      await runFleet(["undrain", WORKER_ID], env);
    }
  }, 60_000);

  it("reports 404 not_found for a worker that never sent a heartbeat", async () => {
    const run = await runFleet(["drain", "no-such-worker"], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/404 not_found: .*\(request id [\w-]+\)/);
  });
});

describe("fleet demo", () => {
  it("makes an avatar and a voice, runs them through the worker and prints a playable video", async () => {
    const run = await runFleet(["demo"], env);
    expect(run.stderr).not.toContain("fleet:");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^probed: 4\.\d\d s; video h264 256x256 25 fps; audio aac \d+ Hz/m);
    expect(run.stdout).toContain("lips do not follow it");
    const probe = await probeMedia(outputUrl(run.stdout));
    expect(probe).toMatchObject({ hasVideo: true, hasAudio: true, width: 256, height: 256, videoCodec: "h264" });
    expect(probe.durationSec).toBeCloseTo(4, 0);
  }, 120_000);
});
