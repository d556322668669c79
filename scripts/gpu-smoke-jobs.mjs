// The jobs of scripts/gpu-smoke.sh: the worker's own `http` driver (apps/worker/dist) against a
// running inference container. For each avatar: the worker's input validation, one prediction,
// then checks on the output. Prints one JSON line per job and exits non-zero if any check fails.
//
//   node scripts/gpu-smoke-jobs.mjs <inference url> <work dir> <voice> <avatar> [<avatar> ...]
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { createHttpDriver } = await import(path.join(root, "apps/worker/dist/inference/http-driver.js"));
const { validateInputs } = await import(path.join(root, "apps/worker/dist/media/validate.js"));
const { createLogger } = await import(path.join(root, "apps/worker/dist/logger.js"));

const [url, workDir, voice, ...avatars] = process.argv.slice(2);
if (!url || !workDir || !voice || avatars.length === 0) {
  console.error("usage: gpu-smoke-jobs.mjs <inference url> <work dir> <voice> <avatar>...");
  process.exit(2);
}
const log = createLogger({ level: "warn" });
const driver = createHttpDriver({ url, workDir, workDirInEngine: workDir, timeoutMs: 1_800_000, pollMs: 500, log });

function probe(file) {
  const out = execFileSync("ffprobe", ["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
    "stream=nb_read_frames,avg_frame_rate:format=duration", "-of", "json", file], { encoding: "utf8" });
  const json = JSON.parse(out);
  return { durationSec: Number(json.format.duration), frames: Number(json.streams[0].nb_read_frames), rate: json.streams[0].avg_frame_rate };
}

// The first avatar runs again at the end: with the engine's avatar cache (on by default in the
// image) the second run skips preparation, and its wall time over generation time is the figure
// the cache is judged by (target: at most 1.2).
const runs = [...avatars.map((avatar) => ({ avatar, repeat: false })), { avatar: avatars[0], repeat: true }];
let failed = false;
for (const { avatar, repeat } of runs) {
  const signal = new AbortController().signal;
  const media = await validateInputs({ video: avatar, audio: voice }, { timeoutMs: 60_000, maxDurationSec: 600, signal });
  const outputPath = path.join(workDir, `out-${path.basename(avatar, path.extname(avatar))}${repeat ? "-repeat" : ""}.mp4`);
  const started = Date.now();
  const { metrics } = await driver.infer({
    jobId: `smoke-${path.basename(avatar)}`, attemptId: randomUUID(), videoPath: avatar, audioPath: voice, outputPath,
    video: media.video, audio: media.audio, aspectRatio: "9:16", resolution: "720p", params: {}, signal,
    onProgress: () => {},
  });
  const wallSec = (Date.now() - started) / 1000;
  const out = probe(outputPath);
  const voiceSec = media.audio.durationSec;
  const problems = [];
  if (Math.abs(out.durationSec - voiceSec) > 1 / 25 + 0.05) problems.push(`output lasts ${out.durationSec} s, the voice ${voiceSec} s`);
  if (out.rate !== "25/1") problems.push(`output rate ${out.rate}, expected 25/1`);
  if (metrics.frames_without_face >= metrics.frames) problems.push("no face found in any output frame");
  if (repeat && metrics.avatar_cache !== "hit") problems.push(`the repeated avatar was not a cache hit (${metrics.avatar_cache})`);
  failed ||= problems.length > 0;
  console.log(JSON.stringify({
    avatar: path.basename(avatar), repeat, avatar_cache: metrics.avatar_cache, prepare_sec: metrics.prepare_sec,
    source_fps: metrics.source_fps, ok: problems.length === 0, problems,
    voice_sec: voiceSec, output_sec: out.durationSec, output_frames: out.frames,
    frames_without_face: metrics.frames_without_face, frames: metrics.frames,
    generation_sec: metrics.GENERATION_TIME_SEC, wall_sec: wallSec,
    wall_per_generation: metrics.GENERATION_TIME_SEC ? Number((wallSec / metrics.GENERATION_TIME_SEC).toFixed(2)) : null,
    ...(repeat && metrics.GENERATION_TIME_SEC ? { cache_target_met: wallSec / metrics.GENERATION_TIME_SEC <= 1.2 } : {}),
    peak_vram_mib_torch: metrics.PEAK_VRAM_MIB, stage_times: metrics.stage_times,
  }));
}
await driver.close();
process.exit(failed ? 1 : 0);
