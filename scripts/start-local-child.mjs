// One child process of the quick start: its output split into lines, and a way to stop it
// politely (SIGTERM to the process) or for good (SIGKILL to its whole process group).
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

export function startChild({ label, color, command, args, cwd, env, onLine, onExit }) {
  // detached: its own process group, so the terminal's Ctrl-C goes to the launcher only and
  // the launcher decides the order (workers before the orchestrator).
  const proc = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let exited = null;
  const exitWaiters = [];
  const child = {
    label,
    color,
    kind: "child",
    pid: proc.pid,
    get running() {
      return exited === null;
    },
    terminate() {
      if (exited === null) signal(proc.pid, "SIGTERM");
    },
    kill() {
      // The group: an ffmpeg the worker started must not outlive it.
      if (exited === null) signal(-proc.pid, "SIGKILL");
    },
    /** Resolves once the child has exited; past the deadline it is killed. */
    async stopped(timeoutMs) {
      if (exited !== null) return exited;
      const timer = setTimeout(() => child.kill(), timeoutMs);
      const result = await new Promise((resolve) => exitWaiters.push(resolve));
      clearTimeout(timer);
      return result;
    },
  };
  for (const stream of [proc.stdout, proc.stderr]) {
    createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => onLine(child, line));
  }
  proc.on("error", (err) => onLine(child, `failed to start: ${err.message}`));
  proc.on("exit", (code, sig) => {
    exited = { code, signal: sig };
    // Whatever the child left running in its group goes with it.
    signal(-proc.pid, "SIGKILL");
    for (const resolve of exitWaiters.splice(0)) resolve(exited);
    onExit(child, code, sig);
  });
  return child;
}

function signal(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}
