import { describeMediaTool, mediaToolVersion, resolveMediaTools, type MediaTools } from "@fleet/media-tools";
import type { WorkerBoxConfig } from "../config.js";
import { fail, ok } from "./doctor-check.js";
import type { CheckResult } from "./doctor-check.js";

const CHECK_MEDIA_TOOLS = "ffmpeg/ffprobe";

/** The binaries the worker would pick with this box's settings (the worker resolves them the same way). */
export function mediaToolsFor(cfg: WorkerBoxConfig): MediaTools {
  return resolveMediaTools({ FFMPEG_PATH: cfg.ffmpegPath, FFPROBE_PATH: cfg.ffprobePath, PATH: cfg.searchPath });
}

/** Every worker validates inputs with ffprobe, whatever its engine; the CPU engine is ffmpeg. */
export async function checkMediaTools(cfg: WorkerBoxConfig): Promise<CheckResult> {
  const tools = mediaToolsFor(cfg);
  const [ffmpeg, ffprobe] = await Promise.all([mediaToolVersion(tools.ffmpeg), mediaToolVersion(tools.ffprobe)]);
  const seen = `${describeMediaTool(tools.ffmpeg, ffmpeg)}; ${describeMediaTool(tools.ffprobe, ffprobe)}`;
  if (ffmpeg === null || ffprobe === null) {
    return fail(
      CHECK_MEDIA_TOOLS,
      seen,
      "point FFMPEG_PATH/FFPROBE_PATH at working binaries, install the system's (apt-get install ffmpeg), or run `pnpm install` for the npm-shipped builds",
    );
  }
  return ok(CHECK_MEDIA_TOOLS, seen);
}
