import { readFile } from "node:fs/promises";
import { mediaToolVersion, type MediaTools } from "@fleet/media-tools";
import type { Logger } from "./logger.js";

/** The version the worker reports: WORKER_VERSION, else its package.json's. */
export async function readPackageVersion(): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

/**
 * Every worker validates media with ffprobe (and the CPU engine is ffmpeg): say which binaries
 * it found and their versions, so "which ffmpeg made this?" is answered by the first log lines.
 */
export async function logMediaTools(tools: MediaTools, log: Logger): Promise<void> {
  const [ffmpeg, ffprobe] = await Promise.all([mediaToolVersion(tools.ffmpeg), mediaToolVersion(tools.ffprobe)]);
  const facts = {
    ffmpeg: { path: tools.ffmpeg.path, source: tools.ffmpeg.source, version: ffmpeg },
    ffprobe: { path: tools.ffprobe.path, source: tools.ffprobe.source, version: ffprobe },
  };
  if (ffmpeg === null || ffprobe === null) log.warn(facts, "worker_media_tools_missing");
  else log.info(facts, "worker_media_tools");
}
