// Runs a command with the ffmpeg/ffprobe that @fleet/media-tools resolves (FFMPEG_PATH/FFPROBE_PATH,
// the system's, else the npm-shipped static builds) first on PATH and named by FFMPEG_BIN /
// FFPROBE_BIN, for tools that are not Node (the Python inference server's tests):
//
//   node scripts/with-media-tools.mjs python3 -m unittest test_server
import { spawn } from "node:child_process";
import path from "node:path";

const { resolveMediaTools } = await import("../packages/media-tools/dist/index.js");
const tools = resolveMediaTools(process.env);
const dirs = [...new Set([tools.ffmpeg, tools.ffprobe].filter((t) => t.source !== "missing").map((t) => path.dirname(t.path)))];
const env = {
  ...process.env,
  PATH: [...dirs, process.env.PATH ?? ""].join(path.delimiter),
  FFMPEG_BIN: tools.ffmpeg.path,
  FFPROBE_BIN: tools.ffprobe.path,
};
const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error("usage: node scripts/with-media-tools.mjs <command> [args...]");
  process.exit(2);
}
const child = spawn(command, args, { env, stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
