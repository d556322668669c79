import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveMediaTools } from "@fleet/media-tools";
import { stringOption } from "../command.js";
import type { Command } from "../command.js";
import { describeProbe, makeDemoAvatar, makeDemoVoice, probeMedia } from "../demo-media.js";
import type { ProbedMedia } from "../demo-media.js";
import { localOutputPath } from "../output-location.js";
import { submitJob } from "../submit-job.js";
import { reportOutcome } from "./submit.js";

export const demoCommand: Command = {
  name: "demo",
  summary: "Make a small avatar clip and voice with ffmpeg, submit them, wait, show the output video",
  usage: "fleet demo [--seconds 4] [--resolution 256x256] [--keep] [--serve-host HOST] [--json]",
  options: {
    seconds: { type: "string" },
    resolution: { type: "string" },
    keep: { type: "boolean" },
    "serve-host": { type: "string" },
  },
  async run(ctx) {
    const { io, json, values } = ctx;
    const seconds = Number(stringOption(values, "seconds") ?? 4);
    const dir = await mkdtemp(join(tmpdir(), "fleet-demo-"));
    const say = (line: string): void => {
      if (!json) io.stdout.write(line + "\n");
    };
    try {
      const avatar = join(dir, "avatar.mp4");
      const voice = join(dir, "voice.wav");
      say(`making a 2 s avatar clip and a ${seconds} s voice with ffmpeg in ${dir}`);
      // The same choice the worker makes: FFMPEG_PATH/FFPROBE_PATH, the system's, the npm-shipped builds.
      const tools = resolveMediaTools({ FFMPEG_PATH: ctx.env.FFMPEG_PATH, FFPROBE_PATH: ctx.env.FFPROBE_PATH, PATH: ctx.env.PATH });
      await Promise.all([makeDemoAvatar(tools, avatar), makeDemoVoice(tools, voice, seconds)]);
      const outcome = await submitJob(ctx, {
        video: avatar,
        audio: voice,
        resolution: stringOption(values, "resolution") ?? "256x256",
        aspectRatio: "1:1",
        wait: true,
        serveHost: stringOption(values, "serve-host"),
      });
      const code = reportOutcome(ctx, outcome, { printJson: outcome.kind !== "finished" || outcome.job.status !== "succeeded" });
      if (code !== 0 || outcome.kind !== "finished") return code;
      const job = outcome.job;
      const target = localOutputPath(job, ctx.localOutputs) ?? job.output_url;
      if (target === null) return 1;
      let probe: ProbedMedia;
      try {
        probe = await probeMedia(tools, target);
      } catch (err) {
        io.stderr.write(`fleet: the output is not a readable video: ${(err as Error).message}\n`);
        return 1;
      }
      say(`probed: ${describeProbe(probe)}`);
      if (json) io.stdout.write(JSON.stringify({ job, local_path: localOutputPath(job, ctx.localOutputs), probe }, null, 2) + "\n");
      if (!probe.streams.some((s) => s.type === "video")) {
        io.stderr.write("fleet: the output has no video stream\n");
        return 1;
      }
      if (job.metrics?.lip_sync === false || job.metrics?.engine === "ffmpeg") {
        say("made by the CPU ffmpeg engine: the avatar is looped to the voice, its lips do not follow it");
      }
      return 0;
    } finally {
      if (values.keep === true) say(`inputs kept in ${dir}`);
      else await rm(dir, { recursive: true, force: true });
    }
  },
};
