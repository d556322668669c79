import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

export type MediaToolName = "ffmpeg" | "ffprobe";

/**
 * Where a binary came from, in order of preference: the operator's explicit path, the system's
 * (PATH), the static build shipped inside an npm package, or nothing (the bare name is kept so the
 * caller's spawn fails with ENOENT and its own "not installed" message).
 */
export type MediaToolSource = "env" | "system" | "npm" | "missing";

export interface MediaTool {
  name: MediaToolName;
  path: string;
  source: MediaToolSource;
}

export interface MediaTools {
  ffmpeg: MediaTool;
  ffprobe: MediaTool;
}

/** The settings the resolver reads; callers pass their parsed config (or `process.env` in tests). */
export interface MediaToolsEnv {
  FFMPEG_PATH?: string | undefined;
  FFPROBE_PATH?: string | undefined;
  PATH?: string | undefined;
}

// @ffmpeg-installer/ffmpeg and @ffprobe-installer/ffprobe pick the package for this platform
// (@ffmpeg-installer/linux-x64, ...) and export its binary's absolute path; the binaries are in
// the package tarballs, so an offline install still has them.
const NPM_PACKAGES: Record<MediaToolName, string> = {
  ffmpeg: "@ffmpeg-installer/ffmpeg",
  ffprobe: "@ffprobe-installer/ffprobe",
};

const ENV_NAMES: Record<MediaToolName, keyof MediaToolsEnv> = { ffmpeg: "FFMPEG_PATH", ffprobe: "FFPROBE_PATH" };

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onSearchPath(name: string, searchPath: string | undefined): string | null {
  for (const dir of (searchPath ?? "").split(path.delimiter)) {
    if (dir === "") continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

function fromNpm(name: MediaToolName): string | null {
  try {
    const require = createRequire(import.meta.url);
    const found = (require(NPM_PACKAGES[name]) as { path?: unknown }).path;
    return typeof found === "string" && isExecutable(found) ? found : null;
  } catch {
    // Not installed (optional dependency) or no build for this platform.
    return null;
  }
}

export function resolveMediaTool(name: MediaToolName, env: MediaToolsEnv): MediaTool {
  const explicit = env[ENV_NAMES[name]];
  if (explicit) return { name, path: explicit, source: "env" };
  const system = onSearchPath(name, env.PATH);
  if (system) return { name, path: system, source: "system" };
  const shipped = fromNpm(name);
  if (shipped) return { name, path: shipped, source: "npm" };
  return { name, path: name, source: "missing" };
}

/** ffmpeg and ffprobe are resolved separately: a system may have one without the other. */
export function resolveMediaTools(env: MediaToolsEnv): MediaTools {
  return { ffmpeg: resolveMediaTool("ffmpeg", env), ffprobe: resolveMediaTool("ffprobe", env) };
}

/** The first line of `<tool> -version` ("ffmpeg version 5.1.6-0+deb12u1 ..."), or null if it does not run. */
export function mediaToolVersion(tool: MediaTool, timeoutMs = 10_000): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(tool.path, ["-hide_banner", "-version"], { timeout: timeoutMs, maxBuffer: 1024 * 1024 }, (err, stdout) => {
      if (err) return resolve(null);
      // The first line ends with a long copyright notice; the version is what a reader needs.
      resolve(stdout.split("\n")[0]?.replace(/\s+Copyright.*/, "").trim() || null);
    });
  });
}

/** One line for logs and `fleet doctor`: "ffmpeg version 4.1 ... (npm package, /path/ffmpeg)". */
export function describeMediaTool(tool: MediaTool, version: string | null): string {
  const where = { env: "from FFMPEG_PATH/FFPROBE_PATH", system: "system", npm: "npm package", missing: "not found" }[tool.source];
  return `${version ?? `${tool.name}: does not run`} (${where}, ${tool.path})`;
}
