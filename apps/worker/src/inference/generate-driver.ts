import { Pool } from "undici";
import { GenerateFailure, GenerateSuccess, LegacyHealth, type EngineHealth, type GenerateRequest } from "@fleet/contract";
import type { Logger } from "../logger.js";
import { describeNetworkError } from "../util/network-error.js";
import { JobAbortedError, JobError, abortReasonOf } from "../errors/job-error.js";
import { excerpt } from "../util/excerpt.js";
import { requestJson } from "../util/http-json.js";
import type { UrlInferenceDriver, UrlInferenceTask } from "./inference-driver.js";

/**
 * The original MuseTalk image behind the new worker, unchanged: POST /generate does download,
 * inference and upload itself, and /hc is its health. Its structured 422/500 bodies become the
 * report's error_info field by field, so the retry policy can read type, stage and retryable.
 */
export function createGenerateDriver(opts: { url: string; timeoutMs: number; log: Logger }): UrlInferenceDriver {
  const base = new URL(opts.url);
  const prefix = base.pathname.replace(/\/+$/, "");
  const pool = new Pool(base.origin, { connectTimeout: 5_000, keepAliveTimeout: 4_000 });

  return {
    name: "generate",
    input: "urls",
    async health({ signal, busy }): Promise<EngineHealth> {
      try {
        const res = await requestJson(pool, { method: "GET", path: `${prefix}/hc`, timeoutMs: 5_000, signal });
        if (res.statusCode === 200 && LegacyHealth.safeParse(res.json).success) {
          return { driver: "generate", state: "ready", detail: "original /generate image", lip_sync: true };
        }
        return { driver: "generate", state: "error", detail: `/hc answered HTTP ${res.statusCode} ${excerpt(res.text, 200)}` };
      } catch (err) {
        // The original's /hc stalls while it runs inference (it blocks its event loop).
        return { driver: "generate", state: busy ? "busy" : "unavailable", detail: describeNetworkError(err) };
      }
    },

    async generate(task: UrlInferenceTask) {
      const body: GenerateRequest = {
        musetalk_job_id: task.job.musetalk_job_id,
        video_url: task.job.video_url,
        audio_url: task.job.audio_url,
        aspect_ratio: task.job.aspect_ratio,
        resolution: task.job.resolution,
        params: task.job.params,
      };
      task.onProgress(0, "inferring");
      let res;
      try {
        // One deadline for the whole call, INFERENCE_TIMEOUT_SEC: a long run must not be cut off by a shorter client default.
        res = await requestJson(pool, { method: "POST", path: `${prefix}/generate`, body, timeoutMs: opts.timeoutMs, signal: task.signal });
      } catch (err) {
        if (task.signal.aborted) throw new JobAbortedError(abortReasonOf(task.signal));
        throw JobError.processing("inference", `/generate call failed: ${describeNetworkError(err)}`, true);
      }
      if (res.statusCode === 200) {
        const ok = GenerateSuccess.safeParse(res.json);
        if (ok.success) {
          task.onProgress(1, "inferring");
          return { outputUrl: ok.data.output_url, metrics: ok.data.metrics };
        }
        // A 200 without output_url is the "phantom success" of the legacy response.
        throw JobError.processing("postprocessing", "/generate answered 200 without a success body and output_url", false, {
          http_status: 200,
          body: excerpt(res.text, 2000),
        });
      }
      const failure = GenerateFailure.safeParse(res.json);
      if (failure.success) {
        const f = failure.data;
        throw JobError.of(f.error_type, f.stage, f.error_message, f.retryable, {
          ...(f.details ?? {}),
          http_status: res.statusCode,
          stage_times: f.stage_times ?? null,
          stack_trace: f.stack_trace ? excerpt(f.stack_trace, 4000) : null,
        });
      }
      if (res.statusCode === 422) {
        // FastAPI's own validation body {"detail": [...]}: our request was wrong, retrying won't help.
        throw JobError.processing("preprocessing", "/generate rejected the request schema", false, {
          http_status: 422,
          body: excerpt(res.text, 2000),
        });
      }
      throw JobError.processing("inference", `/generate answered HTTP ${res.statusCode}`, res.statusCode >= 500 || res.statusCode === 429, {
        http_status: res.statusCode,
        body: excerpt(res.text, 2000),
      });
    },

    async close() {
      await pool.destroy();
    },
  };
}
