import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mediaToolVersion, resolveMediaTools } from "./index.js";

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "fleet-media-tools-"));
  // A stand-in "system" ffmpeg on a private PATH entry: only its location matters here.
  await writeFile(path.join(dir, "ffmpeg"), "#!/bin/sh\necho 'ffmpeg version system-stand-in'\n");
  await chmod(path.join(dir, "ffmpeg"), 0o755);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("resolveMediaTools", () => {
  it("uses FFMPEG_PATH and FFPROBE_PATH as given, before anything on PATH", () => {
    const tools = resolveMediaTools({ FFMPEG_PATH: "/opt/ff/ffmpeg", FFPROBE_PATH: "/opt/ff/ffprobe", PATH: dir });
    expect(tools.ffmpeg).toEqual({ name: "ffmpeg", path: "/opt/ff/ffmpeg", source: "env" });
    expect(tools.ffprobe).toEqual({ name: "ffprobe", path: "/opt/ff/ffprobe", source: "env" });
  });

  it("prefers an executable on PATH over the npm-shipped build, per tool", async () => {
    const tools = resolveMediaTools({ PATH: dir });
    expect(tools.ffmpeg).toEqual({ name: "ffmpeg", path: path.join(dir, "ffmpeg"), source: "system" });
    expect(await mediaToolVersion(tools.ffmpeg)).toBe("ffmpeg version system-stand-in");
    // No ffprobe in that directory: the npm-shipped one fills in.
    expect(tools.ffprobe.source).toBe("npm");
  });

  it("falls back to the npm-shipped static builds, which run with no system ffmpeg at all", async () => {
    const tools = resolveMediaTools({ PATH: "" });
    expect(tools.ffmpeg.source).toBe("npm");
    expect(tools.ffprobe.source).toBe("npm");
    expect(await mediaToolVersion(tools.ffmpeg)).toMatch(/^ffmpeg version /);
    expect(await mediaToolVersion(tools.ffprobe)).toMatch(/^ffprobe version /);
  });

  it("reports a binary that does not run as having no version", async () => {
    expect(await mediaToolVersion({ name: "ffmpeg", path: path.join(dir, "no-such-ffmpeg"), source: "env" })).toBeNull();
  });
});
