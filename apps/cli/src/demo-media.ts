import { spawn } from "node:child_process";
import type { MediaTools } from "@fleet/media-tools";

/** Runs ffmpeg/ffprobe to completion; rejects with the tail of stderr so a failure says why. */
function runTool(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (stderr = (stderr + c.toString("utf8")).slice(-4000)));
    child.on("error", (err) =>
      reject((err as NodeJS.ErrnoException).code === "ENOENT" ? new Error(`${cmd} is not installed: set FFMPEG_PATH/FFPROBE_PATH, run \`pnpm install\` for the npm-shipped builds, or apt-get install ffmpeg`) : err),
    );
    child.on("close", (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`${cmd} exited with ${code}: ${stderr.trim().split("\n").slice(-3).join(" | ")}`)),
    );
  });
}

const SIZE = 256;

// A drawn face: skin disc, two eyes that blink, and a mouth that opens with the voice's syllable
// rhythm (2 per second), so the demo looks like a talking head even from the CPU engine.
const MOUTH = `lte(hypot((X-128)/32,(Y-172)/(2+12*abs(sin(2*PI*2*T)))),1)`;
const EYES = `lte(min(hypot(X-96,(Y-106)*if(lt(mod(T,2),0.12),6,1)),hypot(X-160,(Y-106)*if(lt(mod(T,2),0.12),6,1))),11)`;
const FACE = `lte(hypot(X-128,Y-128),92)`;
const channel = (mouth: number, eyes: number, face: number, bg: number): string =>
  `if(${MOUTH},${mouth},if(${EYES},${eyes},if(${FACE},${face},${bg})))`;

/** A 2-second 256x256 H.264 avatar clip; the worker loops it to the voice's length. */
export async function makeDemoAvatar(tools: MediaTools, path: string, seconds = 2): Promise<void> {
  const geq = `geq=r='${channel(130, 35, 232, 38)}':g='${channel(35, 35, 190, 58)}':b='${channel(45, 45, 150, 92)}'`;
  await runTool(tools.ffmpeg.path, [
    "-hide_banner", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", `color=c=black:s=${SIZE}x${SIZE}:r=25:d=${seconds}`,
    "-vf", `format=rgb24,${geq},format=yuv420p`,
    "-c:v", "libx264", "-preset", "ultrafast", "-movflags", "+faststart",
    path,
  ]);
}

/** A speech-like voice: a 140 Hz voice with harmonics, pitch drifting, in syllables of 0.25 s. */
export async function makeDemoVoice(tools: MediaTools, path: string, seconds = 4): Promise<void> {
  const f0 = `(140+25*sin(2*PI*0.7*t))`;
  const voice = `(0.6*sin(2*PI*${f0}*t)+0.3*sin(4*PI*${f0}*t)+0.12*sin(10*PI*${f0}*t))`;
  const syllables = `pow(abs(sin(2*PI*2*t)),0.7)`;
  await runTool(tools.ffmpeg.path, [
    "-hide_banner", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", `aevalsrc='0.5*${voice}*${syllables}':s=16000:d=${seconds}`,
    "-ac", "1", "-c:a", "pcm_s16le",
    path,
  ]);
}

export interface ProbedStream {
  type: string;
  codec: string;
  width?: number;
  height?: number;
  fps?: number;
  sampleRate?: number;
  channels?: number;
}

export interface ProbedMedia {
  durationSec: number | null;
  streams: ProbedStream[];
}

interface FfprobeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  sample_rate?: string;
  channels?: number;
}

/** ffprobe a local path or an http(s) URL. */
export async function probeMedia(tools: MediaTools, target: string): Promise<ProbedMedia> {
  const out = await runTool(tools.ffprobe.path, ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", target]);
  const json = JSON.parse(out) as { format?: { duration?: string }; streams?: FfprobeStream[] };
  const duration = Number(json.format?.duration);
  return {
    durationSec: Number.isFinite(duration) ? duration : null,
    streams: (json.streams ?? []).map((s) => {
      const [num, den] = (s.avg_frame_rate ?? "0/0").split("/").map(Number);
      const fps = num !== undefined && den !== undefined && den > 0 ? num / den : undefined;
      return {
        type: s.codec_type ?? "unknown",
        codec: s.codec_name ?? "unknown",
        ...(s.width === undefined ? {} : { width: s.width, height: s.height }),
        ...(fps === undefined || fps === 0 ? {} : { fps: Math.round(fps * 100) / 100 }),
        ...(s.sample_rate === undefined ? {} : { sampleRate: Number(s.sample_rate), channels: s.channels }),
      };
    }),
  };
}

export function describeProbe(p: ProbedMedia): string {
  const streams = p.streams.map((s) =>
    s.type === "video"
      ? `video ${s.codec} ${s.width}x${s.height}${s.fps === undefined ? "" : ` ${s.fps} fps`}`
      : s.type === "audio"
        ? `audio ${s.codec} ${s.sampleRate} Hz${s.channels === 1 ? " mono" : s.channels === 2 ? " stereo" : ""}`
        : `${s.type} ${s.codec}`,
  );
  return `${p.durationSec === null ? "unknown duration" : `${p.durationSec.toFixed(2)} s`}; ${streams.join("; ")}`;
}
