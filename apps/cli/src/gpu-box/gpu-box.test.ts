import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { WorkerView } from "@fleet/contract";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { boxSummary } from "../commands/workers.js";
import { runFleet } from "../testing/run-fleet.js";
import { layoutProblems, parseGpuBoxEnv, parseGpuSelection, planGpuBox } from "./gpu-box-layout.js";
import { renderGpuBoxCompose } from "./render-gpu-box-compose.js";
import { gpuBoxComposeProblems } from "./validate-gpu-box-compose.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "fleet-gpu-box-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Services = Record<string, { environment: Record<string, string>; deploy: { resources: { reservations: { devices: Array<{ device_ids: string[] }> } } } }>;

describe("fleet gpu-box init", () => {
  it("writes one worker + engine pair per GPU with ids <box>-gpu<N>, distinct ports, its own device and work subdirectory", async () => {
    const out = join(dir, "two.yaml");
    const run = await runFleet(["gpu-box", "init", "--gpus", "0,1", "--box", "box-a", "--out", out], {});
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("GPU 1: worker box-a-gpu1 on :8001, engine on :5001");
    const text = await readFile(out, "utf8");
    const doc = parse(text) as { name: string; services: Services; volumes: Record<string, unknown> };
    expect(Object.keys(doc.services)).toEqual(["inference-gpu0", "inference-gpu1", "worker-gpu0", "worker-gpu1"]);
    expect(doc.services["worker-gpu1"]?.environment).toMatchObject({
      BUFFER_WORKER_ID: "box-a-gpu1",
      PORT: "8001",
      INFERENCE_URL: "http://127.0.0.1:5001",
      WORK_DIR: "/var/lib/fleet/work/gpu1",
      INFERENCE_WORK_DIR: "/var/lib/fleet/work/gpu1",
    });
    expect(doc.services["inference-gpu1"]?.environment).toMatchObject({ INFERENCE_PORT: "5001", INFERENCE_WORK_ROOT: "/var/lib/fleet/work/gpu1" });
    expect(doc.services["inference-gpu1"]?.deploy.resources.reservations.devices[0]?.device_ids).toEqual(["1"]);
    expect(Object.keys(doc.volumes)).toEqual(["work"]);
    const layout = parseGpuBoxEnv(doc.services["worker-gpu0"]?.environment.FLEET_GPU_BOX);
    expect(layout?.gpus.map((g) => g.worker_id)).toEqual(["box-a-gpu0", "box-a-gpu1"]);
    expect(gpuBoxComposeProblems(text)).toEqual([]);
  });

  it("refuses a GPU named twice, a box name that makes bad worker ids, and overwriting a file it did not write", async () => {
    expect((await runFleet(["gpu-box", "init", "--gpus", "0,0", "--out", "-"], {})).code).toBe(2);
    const badBox = await runFleet(["gpu-box", "init", "--gpus", "0", "--box", "a b", "--out", "-"], {});
    expect(badBox.code).toBe(2);
    expect(badBox.stderr).toMatch(/worker_id/);
    const mine = join(dir, "hand-written.yaml");
    await writeFile(mine, "services: {}\n");
    const refused = await runFleet(["gpu-box", "init", "--gpus", "0", "--box", "b", "--out", mine], {});
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("--force");
    expect(await readFile(mine, "utf8")).toBe("services: {}\n");
  });

  it("reads GPU lists and ranges, and asks nvidia-smi only for all", async () => {
    expect(await parseGpuSelection("0,2", () => Promise.reject(new Error("not called")))).toEqual([0, 2]);
    expect(await parseGpuSelection("0-3", () => Promise.reject(new Error("not called")))).toEqual([0, 1, 2, 3]);
    expect(await parseGpuSelection("all", () => Promise.resolve([0, 1]))).toEqual([0, 1]);
    await expect(parseGpuSelection("all", () => Promise.resolve([]))).rejects.toThrow(/name them/);
    await expect(parseGpuSelection("gpu1", () => Promise.resolve([]))).rejects.toThrow(/not a GPU number/);
  });

  it("finds the hand-copy mistakes: a port shared by two GPUs, an engine on the wrong device, a worker calling another GPU's engine", () => {
    const layout = planGpuBox({ box: "b", gpus: [0, 1] });
    expect(layoutProblems({ ...layout, gpus: layout.gpus.map((g) => ({ ...g, worker_port: 8000 })) })).toContain("port 8000 is used 2 times");
    const text = renderGpuBoxCompose(layout, "test");
    expect(gpuBoxComposeProblems(text.replace('device_ids: ["1"]', 'device_ids: ["0"]'))).toContain('inference-gpu1 reserves device_ids ["0"], not ["1"]');
    expect(gpuBoxComposeProblems(text.replace('INFERENCE_URL: "http://127.0.0.1:5001"', 'INFERENCE_URL: "http://127.0.0.1:5000"'))).toContain(
      "worker-gpu1 calls http://127.0.0.1:5000, but inference-gpu1 listens on 5001",
    );
  });

  it("plans 8 GPUs without a clash: ports follow the GPU number", () => {
    const layout = planGpuBox({ box: "big", gpus: [0, 1, 2, 3, 4, 5, 6, 7] });
    expect(layout.gpus.map((g) => g.worker_port)).toEqual([8000, 8001, 8002, 8003, 8004, 8005, 8006, 8007]);
    expect(gpuBoxComposeProblems(renderGpuBoxCompose(layout, "test"))).toEqual([]);
    expect(() => planGpuBox({ box: "x", gpus: [0, 1], workerPort: 5000, inferencePort: 5001 })).toThrow(/port 5001 is used 2 times/);
  });
});

function view(worker_id: string, hostname: string | null, online: boolean): WorkerView {
  return {
    worker_id,
    status: online ? "idle" : "offline",
    tier: "buffer",
    protocol: "fleet",
    online,
    heartbeat_age_sec: online ? 1 : 120,
    last_heartbeat: new Date().toISOString(),
    first_seen: new Date().toISOString(),
    gpu_class: "RTX-3090",
    capacity: 1,
    error: null,
    version: "0.1.0",
    system: hostname === null ? null : { hostname },
    engine: null,
    drain_requested: false,
    consecutive_failures: 0,
    quarantined_until: null,
    running: [],
  };
}

describe("fleet workers by box", () => {
  it("says per box how many GPUs it runs and which are offline", () => {
    const summary = boxSummary([view("a-gpu1", "box-a", false), view("b-1", "box-b", true), view("a-gpu0", "box-a", true), view("old", null, true)]);
    expect(summary.split("\n")).toEqual([
      "box box-a: 2 GPUs, 1 offline (a-gpu1)",
      "box box-b: 1 GPU, all online",
      "box (no hostname reported): 1 GPU, all online",
      "",
    ]);
  });
});
