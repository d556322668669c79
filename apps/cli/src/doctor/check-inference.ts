import { spawn } from "node:child_process";
import { INFERENCE_PATHS, InferenceHealth, LegacyHealth } from "@fleet/contract";
import { request } from "undici";
import type { WorkerBoxConfig } from "../config.js";
import { mediaToolsFor } from "./check-media-tools.js";
import { fail, ok } from "./doctor-check.js";
import type { CheckResult } from "./doctor-check.js";

const CHECK_INFERENCE = "inference ready";

async function getJson(url: string, timeoutMs: number): Promise<{ status: number; json: unknown; text: string }> {
  const res = await request(url, { method: "GET", headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const text = await res.body.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, json, text };
}

function versionOf(cmd: string): Promise<string | null> {
  return new Promise((resolve) => {
    const child = spawn(cmd, ["-version"], { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
    child.on("error", () => resolve(null));
    child.on("close", (code) => resolve(code === 0 ? (out.split("\n")[0] ?? "").replace(/ Copyright.*/, "").trim() : null));
  });
}

function unreachable(url: string, err: unknown, startHint: string): CheckResult {
  const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return fail(CHECK_INFERENCE, `nothing answers at ${url} (${reason})`, `${startHint}, and check INFERENCE_URL`);
}

/** Is the engine beside the worker able to take a job right now? One check per driver. */
export async function checkInference(cfg: WorkerBoxConfig, timeoutMs: number): Promise<CheckResult> {
  if (cfg.inferenceDriver !== "ffmpeg" && cfg.inferenceUrl === undefined) {
    return fail(CHECK_INFERENCE, `INFERENCE_URL is not set (required for INFERENCE_DRIVER=${cfg.inferenceDriver})`, "set INFERENCE_URL to the inference container, e.g. http://127.0.0.1:5000 with host networking");
  }
  const base = (cfg.inferenceUrl ?? "").replace(/\/$/, "");
  switch (cfg.inferenceDriver) {
    case "http": {
      const url = base + INFERENCE_PATHS.health;
      let res;
      try {
        res = await getJson(url, timeoutMs);
      } catch (err) {
        return unreachable(url, err, "start the inference container (docker compose -f docker/compose.gpu.yaml up -d)");
      }
      const health = InferenceHealth.safeParse(res.json);
      if (!health.success) {
        return fail(CHECK_INFERENCE, `${url} answered ${res.status} with ${res.text.slice(0, 120) || "an empty body"}, not Fleet's inference health`, "INFERENCE_URL must point at a container implementing Fleet's http contract (or set INFERENCE_DRIVER=generate for the original image)");
      }
      const h = health.data;
      const who = [h.engine, h.version].filter(Boolean).join(" ");
      const detail = h.detail == null ? "" : `: ${h.detail}`;
      switch (h.status) {
        case "READY":
        case "BUSY":
          return ok(CHECK_INFERENCE, `${url} ${h.status}${who === "" ? "" : ` (${who})`}${h.lip_sync === false ? ", no lip-sync engine" : ""}`);
        case "STARTING":
          return fail(CHECK_INFERENCE, `${url} is STARTING${detail}: models are still loading`, "wait until it reports READY (docker logs -f <inference container>), then run fleet doctor again");
        case "SETUP_FAILED":
          return fail(CHECK_INFERENCE, `${url} SETUP_FAILED${detail}`, "the container could not load its models: read its log (missing weights, CUDA driver mismatch, GPU memory) and restart it");
      }
      break;
    }
    case "generate": {
      const url = `${base}/hc`;
      let res;
      try {
        res = await getJson(url, timeoutMs);
      } catch (err) {
        return unreachable(url, err, "start the original inference image");
      }
      if (res.status === 200 && LegacyHealth.safeParse(res.json).success) return ok(CHECK_INFERENCE, `${url} ok (original /generate image)`);
      return fail(CHECK_INFERENCE, `${url} answered ${res.status} ${res.text.slice(0, 120)}`, "the original image is not healthy yet: read its log");
    }
    case "ffmpeg": {
      const ffmpeg = await versionOf(mediaToolsFor(cfg).ffmpeg.path);
      if (ffmpeg === null) {
        return fail(CHECK_INFERENCE, "the CPU engine's ffmpeg does not run (see the ffmpeg/ffprobe check)", "point FFMPEG_PATH at a working ffmpeg, install the system's, or run `pnpm install` for the npm-shipped build");
      }
      return ok(CHECK_INFERENCE, `${ffmpeg} (CPU development engine: videos without lip movement)`);
    }
  }
  return fail(CHECK_INFERENCE, `INFERENCE_DRIVER=${cfg.inferenceDriver} is not a driver`, "set INFERENCE_DRIVER to http (Fleet's inference server), generate (the original image) or ffmpeg (CPU development)");
}
