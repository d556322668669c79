import { ConfigError as WorkerConfigError } from "@fleet/worker";
import type { CliIo } from "../cli-io.js";
import { stringOption } from "../command.js";
import type { Command } from "../command.js";
import { describesWorkerBox, loadQuickStartWorkerBox, loadWorkerBoxConfig } from "../config.js";
import type { WorkerBoxConfig } from "../config.js";
import { checkGpuBox } from "../doctor/check-gpu-box.js";
import { checkInference } from "../doctor/check-inference.js";
import { checkMediaTools } from "../doctor/check-media-tools.js";
import { CHECK_HEARTBEAT, checkOrchestrator } from "../doctor/check-orchestrator.js";
import { checkStorage } from "../doctor/check-storage.js";
import { checkWorkDir } from "../doctor/check-work-dir.js";
import type { CheckResult } from "../doctor/doctor-check.js";
import { UsageError } from "../usage-error.js";

/** The worker's own validation of its settings, reported as a check when it refuses them. */
const CHECK_SETTINGS = "worker settings";

const MARK = { ok: "✓", fail: "✗", skip: "-" } as const;

function printChecks(io: CliIo, results: readonly CheckResult[]): void {
  const width = Math.max(...results.map((r) => r.name.length));
  for (const r of results) {
    const detail = r.status === "skip" ? `skipped: ${r.detail}` : r.detail;
    io.stdout.write(`${MARK[r.status]} ${r.name.padEnd(width)}  ${detail}\n`);
    if (r.status === "fail" && r.fix !== undefined) io.stdout.write(`  ${" ".repeat(width)}  fix: ${r.fix}\n`);
  }
}

function positiveNumber(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${flag} must be a non-negative number`);
  return n;
}

export const doctorCommand: Command = {
  name: "doctor",
  summary: "Check this worker box: orchestrator, key, heartbeat, inference, storage, disk",
  usage:
    "fleet doctor [--env-file .env] [--worker ID] [--url URL] [--internal-key KEY] [--min-free-gb 5] [--timeout-sec 5] [--json]\n\n" +
    "Reads the worker's own settings (BUFFER_ORCHESTRATOR_BASE_URL or ORCHESTRATOR_BASE_URL, INTERNAL_API_KEY,\n" +
    "BUFFER_WORKER_ID, INFERENCE_DRIVER, INFERENCE_URL, STORAGE, B2_KEY_ID, B2_APP_KEY, B2_BUCKET_NAME,\n" +
    "B2_AUTHORIZE_URL, WORK_DIR) from the environment or --env-file; flags override them. Inside a container\n" +
    "of a box made by fleet gpu-box init (FLEET_GPU_BOX set), it checks every GPU of the box.",
  options: {
    "env-file": { type: "string" },
    worker: { type: "string" },
    "min-free-gb": { type: "string" },
    "timeout-sec": { type: "string" },
  },
  async run({ env, io, json, values, localDataDir }) {
    const envFile = stringOption(values, "env-file");
    const explicit =
      envFile !== undefined || describesWorkerBox(env) || stringOption(values, "url") !== undefined || stringOption(values, "internal-key") !== undefined;
    const quickStart = explicit ? null : loadQuickStartWorkerBox(localDataDir, stringOption(values, "worker"), env.PATH);
    let cfg: WorkerBoxConfig;
    try {
      cfg = quickStart ?? loadWorkerBoxConfig(env, envFile);
    } catch (err) {
      // The worker itself would refuse these settings: that is this box's finding, not a usage error.
      if (err instanceof WorkerConfigError) {
        return report(io, json, [{ name: CHECK_SETTINGS, status: "fail", detail: err.message, fix: "correct the variables named above in the worker's .env" }]);
      }
      throw new UsageError((err as Error).message);
    }
    if (quickStart !== null && !json) {
      io.stdout.write(`no worker settings in the environment: checking the quick start's ${quickStart.workerId ?? "worker"} (./fleetw start)\n`);
    }
    cfg.orchestratorUrl = stringOption(values, "url") ?? cfg.orchestratorUrl;
    cfg.internalApiKey = stringOption(values, "internal-key") ?? cfg.internalApiKey;
    cfg.workerId = stringOption(values, "worker") ?? cfg.workerId;
    const minFreeGb = positiveNumber(stringOption(values, "min-free-gb"), "min-free-gb", 5);
    const timeoutMs = positiveNumber(stringOption(values, "timeout-sec"), "timeout-sec", 5) * 1000;
    if (!json) {
      io.stdout.write(
        `fleet doctor: worker ${cfg.workerId ?? "(BUFFER_WORKER_ID unset)"} -> ${cfg.orchestratorUrl ?? "(no orchestrator URL)"}, ` +
          `driver ${cfg.inferenceDriver}, storage ${cfg.storage}\n`,
      );
    }
    const box = cfg.gpuBox;
    if (box !== null && !json) {
      io.stdout.write(`GPU box ${box.box}: ${box.gpus.map((g) => `gpu${g.gpu} (${g.worker_id})`).join(", ")}\n`);
    }
    // Independent groups run together so a dead orchestrator and a dead container cost one timeout, not two.
    const [orchestrator, inference, mediaTools, storage, workDir, gpus] = await Promise.all([
      checkOrchestrator(cfg, timeoutMs),
      checkInference(cfg, timeoutMs),
      checkMediaTools(cfg),
      checkStorage(cfg, timeoutMs),
      checkWorkDir(cfg, minFreeGb),
      box === null ? Promise.resolve([]) : checkGpuBox(box, cfg, timeoutMs),
    ]);
    // On a GPU box the per-GPU lines replace this worker's own heartbeat and engine lines.
    const results =
      box === null
        ? [...orchestrator, inference, mediaTools, storage, workDir]
        : [...orchestrator.filter((r) => r.name !== CHECK_HEARTBEAT), mediaTools, storage, workDir, ...gpus];
    return report(io, json, results);
  },
};

/** Prints the checks (or their JSON) with the summary line; the exit code is 1 when any failed. */
function report(io: CliIo, json: boolean, results: readonly CheckResult[]): number {
  const failed = results.filter((r) => r.status === "fail");
  if (json) {
    io.stdout.write(JSON.stringify({ ok: failed.length === 0, checks: results }, null, 2) + "\n");
  } else {
    printChecks(io, results);
    io.stdout.write(
      failed.length === 0
        ? "\nall checks passed\n"
        : `\n${failed.length} check${failed.length === 1 ? "" : "s"} failed: ${failed.map((r) => r.name).join(", ")}\n`,
    );
  }
  return failed.length === 0 ? 0 : 1;
}
