import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { createFfmpegDriver } from "./ffmpeg-driver.js";
import { createGenerateDriver } from "./generate-driver.js";
import { createHttpDriver } from "./http-driver.js";
import type { InferenceDriver } from "./inference-driver.js";

/** INFERENCE_DRIVER → driver. config.ts guarantees INFERENCE_URL for the two HTTP drivers. */
export function createInferenceDriver(config: Config, log: Logger): InferenceDriver {
  const inf = config.inference;
  const driverLog = log.child({ component: "inference", driver: inf.driver });
  switch (inf.driver) {
    case "ffmpeg":
      return createFfmpegDriver({ timeoutMs: inf.timeoutMs, log: driverLog, bounds: config.limits.ffmpeg, ffmpegPath: config.mediaTools.ffmpeg.path });
    case "http":
      return createHttpDriver({
        url: inf.url ?? "",
        workDir: config.workDir,
        workDirInEngine: inf.workDirInEngine,
        timeoutMs: inf.timeoutMs,
        pollMs: inf.pollMs,
        batchSize: config.batchSize,
        log: driverLog,
      });
    case "generate":
      return createGenerateDriver({ url: inf.url ?? "", timeoutMs: inf.timeoutMs, log: driverLog });
  }
}
