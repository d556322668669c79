import { parse } from "yaml";
import { GpuBoxLayout, layoutProblems } from "./gpu-box-layout.js";

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : {});

/**
 * Reads a GPU-box compose file back the way compose would and checks what would take a GPU down
 * silently: every GPU has its worker and engine, each engine reserves exactly its own device,
 * each worker calls its own engine, no port, worker id or work dir is used twice, and every
 * worker carries the same box layout (what `fleet doctor` checks). Returns the problems found.
 */
export function gpuBoxComposeProblems(text: string): string[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    return [`not YAML: ${(err as Error).message}`];
  }
  const services = obj(obj(doc).services);
  const problems: string[] = [];
  const workerNames = Object.keys(services).filter((n) => n.startsWith("worker-gpu"));
  if (workerNames.length === 0) return ["no worker-gpu<N> service"];
  const layouts = new Set<string>();
  const ports: number[] = [];
  for (const name of workerNames) {
    const gpu = Number(name.slice("worker-gpu".length));
    const worker = obj(services[name]);
    const env = obj(worker.environment);
    const engine = obj(services[`inference-gpu${gpu}`]);
    const engineEnv = obj(engine.environment);
    if (Object.keys(engine).length === 0) {
      problems.push(`${name} has no inference-gpu${gpu}`);
      continue;
    }
    const devices = (obj(obj(obj(engine.deploy).resources).reservations).devices ?? []) as unknown[];
    const ids = devices.flatMap((d) => (Array.isArray(obj(d).device_ids) ? (obj(d).device_ids as unknown[]).map(String) : []));
    if (ids.length !== 1 || ids[0] !== String(gpu)) problems.push(`inference-gpu${gpu} reserves device_ids ${JSON.stringify(ids)}, not ["${gpu}"]`);
    if (env.INFERENCE_URL !== `http://127.0.0.1:${String(engineEnv.INFERENCE_PORT)}`) {
      problems.push(`${name} calls ${String(env.INFERENCE_URL)}, but inference-gpu${gpu} listens on ${String(engineEnv.INFERENCE_PORT)}`);
    }
    if (env.WORK_DIR !== engineEnv.INFERENCE_WORK_ROOT || env.INFERENCE_WORK_DIR !== env.WORK_DIR) {
      problems.push(`${name}'s WORK_DIR ${String(env.WORK_DIR)} differs from its engine's INFERENCE_WORK_ROOT ${String(engineEnv.INFERENCE_WORK_ROOT)}`);
    }
    if (obj(obj(worker.depends_on)[`inference-gpu${gpu}`]).condition !== "service_healthy") {
      problems.push(`${name} does not wait for a healthy inference-gpu${gpu}`);
    }
    ports.push(Number(env.PORT), Number(engineEnv.INFERENCE_PORT));
    layouts.add(String(env.FLEET_GPU_BOX));
  }
  if (layouts.size !== 1) return [...problems, "the workers carry different FLEET_GPU_BOX layouts"];
  let layout: GpuBoxLayout;
  try {
    layout = GpuBoxLayout.parse(JSON.parse([...layouts][0] ?? ""));
  } catch {
    return [...problems, "FLEET_GPU_BOX is not a box layout"];
  }
  problems.push(...layoutProblems(layout));
  if (new Set(ports).size !== ports.length) problems.push(`a port is used twice: ${ports.join(", ")}`);
  for (const g of layout.gpus) {
    const env = obj(obj(services[`worker-gpu${g.gpu}`]).environment);
    if (env.BUFFER_WORKER_ID !== g.worker_id) problems.push(`worker-gpu${g.gpu}'s BUFFER_WORKER_ID ${String(env.BUFFER_WORKER_ID)} is not ${g.worker_id}`);
    if (Number(env.PORT) !== g.worker_port) problems.push(`worker-gpu${g.gpu}'s PORT ${String(env.PORT)} is not the layout's ${g.worker_port}`);
  }
  if (layout.gpus.length !== workerNames.length) problems.push(`the layout names ${layout.gpus.length} GPUs, the file runs ${workerNames.length}`);
  return problems;
}
