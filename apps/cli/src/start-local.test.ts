import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { probeMedia } from "@fleet/testing/media";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const LAUNCHER = join(ROOT, "scripts/start-local.mjs");
const FLEET = join(ROOT, "apps/cli/dist/main.js");

interface Launcher {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

interface LocalFleetState {
  url: string;
  orchestrator_pid: number;
  workers: { worker_id: string; pid: number; outputs_dir: string }[];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts `node scripts/start-local.mjs` on free ports and resolves once its banner is printed. */
async function startLauncher(dataDir: string): Promise<Launcher> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  const proc = spawn(process.execPath, [LAUNCHER, "--port", "0", "--worker-port", "0", "--data-dir", dataDir], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
  proc.stderr.on("data", (c: Buffer) => (out += c.toString("utf8")));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const deadline = Date.now() + 90_000;
  let gone = false;
  void exited.then(() => (gone = true));
  while (!out.includes("Fleet is running")) {
    if (gone || Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`the launcher never printed its banner:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { proc, output: () => out, exited };
}

/** Runs the built `fleet` binary the way `./fleetw fleet` does, with only FLEET_DATA_DIR set. */
function fleet(args: string[], dataDir: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FLEET, ...args], {
      env: { PATH: process.env.PATH, FLEET_DATA_DIR: dataDir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function readState(dataDir: string): LocalFleetState {
  return JSON.parse(readFileSync(join(dataDir, "local-fleet.json"), "utf8")) as LocalFleetState;
}

let dataDir: string;
const launchers: Launcher[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "fleet-start-local-"));
});

afterAll(async () => {
  for (const l of launchers) {
    if (l.proc.exitCode === null && l.proc.signalCode === null) {
      l.proc.kill("SIGTERM");
      await l.exited;
    }
  }
  await rm(dataDir, { recursive: true, force: true });
}, 60_000);

describe("scripts/start-local.mjs", () => {
  it("starts the orchestrator and a CPU worker that fleet sees online and doctor passes, runs the demo, and stops both on Ctrl-C", async () => {
    const launcher = await startLauncher(dataDir);
    launchers.push(launcher);
    const out = launcher.output();
    expect(out).toMatch(/\[orchestrator\] \d\d:\d\d:\d\d INFO {2}orchestrator_started/);
    expect(out).toMatch(/\[worker\] \d\d:\d\d:\d\d INFO {2}buffer_worker_loop_starting workerId=local-cpu-1/);
    expect(out).toContain("/docs");
    expect(out).toContain(`FLEET_DATA_DIR=${dataDir} ./fleetw fleet demo`);
    const keys = JSON.parse(readFileSync(join(dataDir, "dev-keys.json"), "utf8")) as { internal_api_key: string };
    expect(out).toContain(`INTERNAL_API_KEY=${keys.internal_api_key}`);

    const state = readState(dataDir);
    const workers = await fleet(["workers"], dataDir);
    expect(workers.stderr).toBe("");
    expect(workers.code).toBe(0);
    expect(workers.stdout).toMatch(/^local-cpu-1\s+\w+\s+buffer\s+yes\s+\d+s ago\s+cpu-dev\s+0\/1/m);

    const doctor = await fleet(["doctor", "--min-free-gb", "0.01"], dataDir);
    expect(doctor.stdout).toContain("checking the quick start's local-cpu-1");
    expect(doctor.stdout).toMatch(/^✓ heartbeat fresh\s+local-cpu-1 online/m);
    expect(doctor.stdout).toContain("all checks passed");
    expect(doctor.code).toBe(0);

    const demo = await fleet(["demo"], dataDir);
    expect(demo.code).toBe(0);
    const localFile = /^local file: (.+\.mp4)$/m.exec(demo.stdout)?.[1];
    expect(localFile?.startsWith(join(dataDir, "worker", "outputs"))).toBe(true);
    const probe = await probeMedia(localFile ?? "");
    expect(probe.hasVideo && probe.hasAudio).toBe(true);

    launcher.proc.kill("SIGINT");
    expect(await launcher.exited).toBe(0);
    expect(launcher.output()).toMatch(/\[worker\] .*buffer_worker_stopped[\s\S]*\[orchestrator\] .*orchestrator_stopped[\s\S]*all stopped/);
    expect(alive(state.orchestrator_pid)).toBe(false);
    expect(state.workers.some((w) => alive(w.pid))).toBe(false);
    expect(existsSync(join(dataDir, "local-fleet.json"))).toBe(false);
  }, 180_000);

  it("keeps its development keys across restarts, and stops everything with a non-zero exit when a child dies", async () => {
    const before = readFileSync(join(dataDir, "dev-keys.json"), "utf8");
    const launcher = await startLauncher(dataDir);
    launchers.push(launcher);
    expect(readFileSync(join(dataDir, "dev-keys.json"), "utf8")).toBe(before);
    const state = readState(dataDir);
    const workerPid = state.workers[0]?.pid ?? -1;

    process.kill(workerPid, "SIGKILL");
    expect(await launcher.exited).toBe(1);
    expect(launcher.output()).toContain("worker exited unexpectedly (SIGKILL); stopping the rest");
    expect(alive(state.orchestrator_pid)).toBe(false);
  }, 180_000);
});
