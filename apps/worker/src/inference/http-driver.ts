import path from "node:path";
import { rename, stat } from "node:fs/promises";
import { Pool } from "undici";
import {
  AvatarAnswer,
  INFERENCE_PATHS,
  InferenceHealth,
  Prediction,
  pathFor,
  type EngineHealth,
  type PredictionRequest,
} from "@fleet/contract";
import type { z } from "zod";
import type { Logger } from "../logger.js";
import { describeNetworkError } from "../util/network-error.js";
import { JobAbortedError, JobError, abortReasonOf, faultOf } from "../errors/job-error.js";
import { excerpt } from "../util/excerpt.js";
import { requestJson } from "../util/http-json.js";
import { sleep } from "../util/sleep.js";
import type { FileInferenceDriver, FileInferenceTask } from "./inference-driver.js";

const STATE: Record<InferenceHealth["status"], EngineHealth["state"]> = {
  READY: "ready",
  STARTING: "starting",
  BUSY: "busy",
  SETUP_FAILED: "error",
};

/** How long the engine may be unreachable mid-prediction before the attempt is given up. */
const UNREACHABLE_LIMIT_MS = 30_000;

/**
 * Fleet's inference contract (docs/wire-protocol.md, "Inference API"): the CUDA container keeps its models warm; the worker
 * PUTs a prediction by id (idempotent, so a retried PUT never starts a second run) with paths in
 * the shared work volume, reads progress with GET, and POSTs cancel when the job is aborted.
 */
/** Tries of a cancel before the worker gives up on telling the engine (the lease still ends the job). */
const CANCEL_ATTEMPTS = 3;

export function createHttpDriver(opts: {
  url: string;
  /** The worker's WORK_DIR and where the same volume is mounted inside the engine. */
  workDir: string;
  workDirInEngine: string;
  timeoutMs: number;
  pollMs: number;
  /** BATCH_SIZE; a job's `params.batch_size` overrides it. */
  batchSize?: number;
  log: Logger;
}): FileInferenceDriver {
  const base = new URL(opts.url);
  const prefix = base.pathname.replace(/\/+$/, "");
  const pool = new Pool(base.origin, { connectTimeout: 5_000, keepAliveTimeout: 4_000 });
  const toEngine = (p: string) => path.posix.join(opts.workDirInEngine, path.relative(opts.workDir, p).split(path.sep).join("/"));
  const fromEngine = (p: string) => path.join(opts.workDir, path.posix.relative(opts.workDirInEngine, p));
  const predictionPath = (id: string) => prefix + pathFor(INFERENCE_PATHS.prediction, { id });

  /**
   * A cancel lost to one timeout would leave the GPU on a job nobody wants until it ends, so it is
   * tried a few times (cancel is idempotent in the engine). Any answer below 500 is final: done,
   * or the prediction is already gone.
   */
  async function cancel(id: string) {
    for (let attempt = 1; attempt <= CANCEL_ATTEMPTS; attempt++) {
      try {
        const res = await requestJson(pool, { method: "POST", path: prefix + pathFor(INFERENCE_PATHS.cancel, { id }), body: {}, timeoutMs: 10_000 });
        if (res.statusCode < 500) return;
        opts.log.warn({ predictionId: id, statusCode: res.statusCode, attempt }, "inference_cancel_failed");
      } catch (err) {
        opts.log.warn({ predictionId: id, err, attempt }, "inference_cancel_failed");
      }
      if (attempt < CANCEL_ATTEMPTS) await sleep(500 * attempt);
    }
  }

  async function put(id: string, body: PredictionRequest, signal: AbortSignal): Promise<z.infer<typeof Prediction>> {
    for (let attempt = 1; ; attempt++) {
      let res;
      try {
        res = await requestJson(pool, { method: "PUT", path: predictionPath(id), body, timeoutMs: 30_000, signal });
      } catch (err) {
        if (signal.aborted) {
          // The engine may have accepted the PUT before the abort cut its answer off: without a
          // cancel it would run the prediction to the end for nobody (a 404 answer is final too).
          await cancel(id);
          throw new JobAbortedError(abortReasonOf(signal));
        }
        if (attempt >= 3) throw JobError.processing("inference", `inference engine unreachable: ${describeNetworkError(err)}`, true);
        await sleep(1_000 * attempt, signal);
        continue;
      }
      const parsed = Prediction.safeParse(res.json);
      if (res.statusCode >= 200 && res.statusCode < 300 && parsed.success) return parsed.data;
      if (res.statusCode >= 500 && attempt < 3) {
        await sleep(1_000 * attempt, signal);
        continue;
      }
      // 409: the engine is busy with another prediction; 503: it is still loading. Both pass.
      const transient = res.statusCode >= 500 || res.statusCode === 429 || res.statusCode === 409;
      throw JobError.processing("inference", `inference engine refused the prediction: HTTP ${res.statusCode}`, transient, {
        status_code: res.statusCode,
        body: excerpt(res.text),
      });
    }
  }

  return {
    name: "http",
    input: "files",
    async health({ signal, busy }) {
      try {
        const res = await requestJson(pool, { method: "GET", path: prefix + INFERENCE_PATHS.health, timeoutMs: 5_000, signal });
        const parsed = InferenceHealth.safeParse(res.json);
        if (!parsed.success) {
          return { driver: "http", state: "error", detail: `unexpected /health-check answer: HTTP ${res.statusCode} ${excerpt(res.text, 200)}` };
        }
        const h = parsed.data;
        return {
          driver: "http",
          state: STATE[h.status],
          detail: [h.engine, h.version, h.detail].filter(Boolean).join(" ") || null,
          lip_sync: h.lip_sync ?? true,
          ...(h.avatar_cache ? { avatar_cache: h.avatar_cache } : {}),
        };
      } catch (err) {
        return { driver: "http", state: busy ? "busy" : "unavailable", detail: describeNetworkError(err) };
      }
    },

    async avatar(videoSha256, signal) {
      try {
        const res = await requestJson(pool, { method: "GET", path: prefix + pathFor(INFERENCE_PATHS.avatar, { hash: videoSha256 }), timeoutMs: 5_000, signal });
        const parsed = AvatarAnswer.safeParse(res.json);
        // An engine that predates the route answers 404: it has no cache to skip the download with.
        if (res.statusCode === 200 && parsed.success && parsed.data.video_sha256 === videoSha256) return parsed.data.answer;
        if (res.statusCode !== 404) opts.log.warn({ statusCode: res.statusCode, body: excerpt(res.text, 200) }, "inference_avatar_answer_unexpected");
      } catch (err) {
        if (!signal.aborted) opts.log.warn({ err }, "inference_avatar_ask_failed");
      }
      return "send_it";
    },

    async infer(task: FileInferenceTask) {
      const id = task.attemptId;
      const started = Date.now();
      const deadline = started + opts.timeoutMs;
      let prediction = await put(
        id,
        {
          input: {
            ...(task.videoPath !== null ? { video_path: toEngine(task.videoPath) } : {}),
            ...(task.videoSha256 !== null ? { video_sha256: task.videoSha256 } : {}),
            audio_path: toEngine(task.audioPath),
            output_path: toEngine(task.outputPath),
            aspect_ratio: task.aspectRatio,
            resolution: task.resolution,
            params: task.params,
            batch_size: typeof task.params.batch_size === "number" ? task.params.batch_size : opts.batchSize,
          },
        },
        task.signal,
      );
      let unreachableSince: number | null = null;
      while (prediction.status === "starting" || prediction.status === "processing") {
        task.onProgress(prediction.progress, prediction.phase ?? "inferring", prediction.metrics ?? undefined);
        await sleep(opts.pollMs, task.signal);
        if (task.signal.aborted) {
          await cancel(id);
          throw new JobAbortedError(abortReasonOf(task.signal));
        }
        if (Date.now() > deadline) {
          await cancel(id);
          throw JobError.processing("inference", `Inference timed out after ${Math.round(opts.timeoutMs / 1000)} s`, true, { timeout_ms: opts.timeoutMs });
        }
        try {
          const res = await requestJson(pool, { method: "GET", path: predictionPath(id), timeoutMs: 10_000, signal: task.signal });
          const parsed = Prediction.safeParse(res.json);
          if (res.statusCode === 404) {
            // The engine keeps predictions in memory: a 404 for one it accepted means the process
            // restarted mid-job (an out-of-memory kill, a crash, a redeploy). Retryable: the next
            // attempt may run elsewhere; a job that kills every engine stops at MAX_ATTEMPTS.
            throw JobError.processing("inference", "the inference engine lost the prediction: it restarted mid-job (out-of-memory kill or crash?)", true, {
              cause: "engine_restarted",
              prediction_id: id,
            });
          }
          if (!parsed.success) throw new Error(`HTTP ${res.statusCode}: ${excerpt(res.text, 200)}`);
          prediction = parsed.data;
          unreachableSince = null;
        } catch (err) {
          if (err instanceof JobError) throw err;
          if (task.signal.aborted) continue;
          unreachableSince ??= Date.now();
          opts.log.warn({ jobId: task.jobId, predictionId: id, err }, "inference_poll_failed");
          if (Date.now() - unreachableSince > UNREACHABLE_LIMIT_MS) {
            throw JobError.processing("inference", `inference engine unreachable for ${UNREACHABLE_LIMIT_MS / 1000} s: ${describeNetworkError(err)}`, true);
          }
        }
      }
      if (prediction.status === "failed") {
        const error = prediction.error ?? { error_type: "processing_error", stage: "inference", message: "inference failed", retryable: false, details: null };
        throw new JobError({ ...error, fault: error.fault ?? faultOf(error.error_type) });
      }
      if (prediction.status === "canceled") {
        if (task.signal.aborted) throw new JobAbortedError(abortReasonOf(task.signal));
        throw JobError.processing("inference", "the inference engine cancelled the prediction", true);
      }
      task.onProgress(1, prediction.phase ?? "inferring");
      // The original reported success for runs that wrote nothing: check the file.
      const output = prediction.output?.video_path ? fromEngine(prediction.output.video_path) : task.outputPath;
      const size = await stat(output).then((s) => s.size).catch(() => 0);
      if (size === 0) {
        throw JobError.processing("postprocessing", "inference reported success but wrote no output file", false, {
          expected_path: prediction.output?.video_path ?? toEngine(task.outputPath),
        });
      }
      if (output !== task.outputPath) await rename(output, task.outputPath);
      return {
        metrics: {
          engine: "http",
          ...(prediction.metrics ?? {}),
          driver: "http",
          GENERATION_TIME_SEC: prediction.metrics?.GENERATION_TIME_SEC ?? (Date.now() - started) / 1000,
        },
      };
    },

    async close() {
      await pool.destroy();
    },
  };
}
