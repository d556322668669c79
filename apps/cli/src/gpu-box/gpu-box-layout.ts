import { z } from "zod";
import { WorkerId } from "@fleet/contract";

/**
 * A box with several GPUs runs one worker + inference pair per GPU (one claim loop per process,
 * one engine per device). The layout says, for every GPU, who is who and on which ports; the
 * compose generator writes it, and every worker of the box carries it in FLEET_GPU_BOX so that
 * `fleet doctor` inside any one of them can check them all (host networking: every port of the
 * box is on 127.0.0.1).
 */
export const GpuBoxLayout = z.object({
  box: z.string().min(1).max(100),
  gpus: z
    .array(
      z.object({
        gpu: z.number().int().min(0).max(63),
        worker_id: WorkerId,
        worker_port: z.number().int().min(1).max(65_535),
        inference_port: z.number().int().min(1).max(65_535),
        work_dir: z.string().startsWith("/"),
      }),
    )
    .min(1)
    .max(64),
});
export type GpuBoxLayout = z.infer<typeof GpuBoxLayout>;

/** The work volume's mount path in both images (docker/worker.env, docker/inference.env). */
export const WORK_MOUNT = "/var/lib/fleet/work";
export const DEFAULT_WORKER_PORT = 8000;
export const DEFAULT_INFERENCE_PORT = 5000;

export interface GpuBoxPlanOptions {
  box: string;
  gpus: readonly number[];
  /** Worker of GPU n listens on workerPort + n (the single-GPU compose file uses 8000). */
  workerPort?: number;
  /** Engine of GPU n listens on inferencePort + n (5000 in the single-GPU file). */
  inferencePort?: number;
}

/**
 * Ports follow the GPU number, not its position in the list, so `gpu1` is always on 8001/5001
 * whichever GPUs the box runs: an operator can tell from a port which GPU it belongs to.
 */
export function planGpuBox(opts: GpuBoxPlanOptions): GpuBoxLayout {
  const workerPort = opts.workerPort ?? DEFAULT_WORKER_PORT;
  const inferencePort = opts.inferencePort ?? DEFAULT_INFERENCE_PORT;
  const layout: GpuBoxLayout = {
    box: opts.box,
    gpus: [...opts.gpus]
      .sort((a, b) => a - b)
      .map((gpu) => ({
        gpu,
        worker_id: `${opts.box}-gpu${gpu}`,
        worker_port: workerPort + gpu,
        inference_port: inferencePort + gpu,
        work_dir: `${WORK_MOUNT}/gpu${gpu}`,
      })),
  };
  const problems = layoutProblems(layout);
  if (problems.length > 0) throw new GpuBoxLayoutError(problems);
  return layout;
}

export class GpuBoxLayoutError extends Error {
  constructor(readonly problems: string[]) {
    super(`the GPU box layout is not valid:\n  ${problems.join("\n  ")}`);
  }
}

/**
 * What a hand-copied compose file gets wrong silently: a GPU twice, an id twice, one port used by
 * two services (the second one fails to bind and that GPU never works), a port out of range.
 */
export function layoutProblems(layout: GpuBoxLayout): string[] {
  const problems: string[] = [];
  const parsed = GpuBoxLayout.safeParse(layout);
  if (!parsed.success) {
    return parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  }
  const seen = (what: string, values: readonly (string | number)[]) => {
    const counts = new Map<string | number, number>();
    for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
    for (const [v, n] of counts) if (n > 1) problems.push(`${what} ${v} is used ${n} times`);
  };
  seen("GPU", layout.gpus.map((g) => g.gpu));
  seen("worker id", layout.gpus.map((g) => g.worker_id));
  seen("port", layout.gpus.flatMap((g) => [g.worker_port, g.inference_port]));
  seen("work dir", layout.gpus.map((g) => g.work_dir));
  return problems;
}

/**
 * `all` (every GPU nvidia-smi lists) or a comma list of GPU numbers (`0,1`, `0-3` ranges too).
 * `detect` is only called for `all`.
 */
export async function parseGpuSelection(text: string, detect: () => Promise<number[]>): Promise<number[]> {
  if (text.trim() === "all") {
    const found = await detect();
    if (found.length === 0) throw new Error("--gpus all: nvidia-smi lists no GPU on this machine; name them instead, e.g. --gpus 0,1");
    return found;
  }
  const gpus: number[] = [];
  for (const part of text.split(",").map((p) => p.trim())) {
    const range = /^(\d+)-(\d+)$/.exec(part);
    if (range) {
      const from = Number(range[1]);
      const to = Number(range[2]);
      if (to < from) throw new Error(`--gpus: range ${part} runs backwards`);
      for (let n = from; n <= to; n++) gpus.push(n);
    } else if (/^\d+$/.test(part)) {
      gpus.push(Number(part));
    } else {
      throw new Error(`--gpus: ${JSON.stringify(part)} is not a GPU number (use all, or e.g. 0,1 or 0-3)`);
    }
  }
  if (new Set(gpus).size !== gpus.length) throw new Error(`--gpus names a GPU twice: ${text}`);
  return gpus;
}

/** FLEET_GPU_BOX as the generator writes it; null when unset, an Error when it is not a layout. */
export function parseGpuBoxEnv(text: string | undefined): GpuBoxLayout | null {
  if (text === undefined || text.trim() === "") return null;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error("FLEET_GPU_BOX is not JSON: regenerate the compose file with fleet gpu-box init");
  }
  const parsed = GpuBoxLayout.safeParse(json);
  if (!parsed.success) throw new Error(`FLEET_GPU_BOX is not a GPU box layout: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return parsed.data;
}
