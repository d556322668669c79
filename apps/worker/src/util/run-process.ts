import { spawn } from "node:child_process";
import readline from "node:readline";

/**
 * Kernel limits for one child (setrlimit through the shell's `ulimit`, so no native addon):
 * a file that lies to ffprobe can still not make ffmpeg take the box's memory or CPU.
 */
export interface ProcessBounds {
  /** RLIMIT_AS: virtual memory, so resident memory stays below it too. */
  memoryBytes: number;
  /** RLIMIT_CPU: CPU seconds across all threads; the kernel sends SIGXCPU, then SIGKILL. */
  cpuSec: number;
}

export interface ProcessOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last ~8 KB of stderr: enough for an error report, bounded for a chatty encoder. */
  stderrTail: string;
  timedOut: boolean;
  aborted: boolean;
  /** The binary could not be started at all (ENOENT...). */
  spawnError: Error | null;
  /** The child was stopped by its ProcessBounds (CPU limit, or an allocation the memory limit refused). */
  hitBound: boolean;
}

/** Exit codes of `sh` when `exec` could not run the command (not found / not executable). */
const SHELL_CANNOT_EXEC = new Set([126, 127]);

/**
 * Runs a child process asynchronously (a blocking call would freeze the heartbeat and /hc for
 * the whole job), streams stdout line by line, and SIGKILLs the child
 * on abort or timeout so a cancelled job frees the machine at once.
 */
export function runProcess(
  command: string,
  args: string[],
  opts: { signal: AbortSignal; timeoutMs: number; onStdoutLine?: (line: string) => void; cwd?: string; bounds?: ProcessBounds },
): Promise<ProcessOutcome> {
  const b = opts.bounds;
  // `exec` replaces the shell, so the pid we SIGKILL on timeout is the bounded child itself.
  const [file, argv] = b
    ? ["/bin/sh", ["-c", `ulimit -v ${Math.max(1, Math.floor(b.memoryBytes / 1024))} && ulimit -t ${Math.max(1, Math.ceil(b.cpuSec))} && exec "$0" "$@"`, command, ...args]]
    : [command, args];
  return new Promise((resolve) => {
    let stderrTail = "";
    let timedOut = false;
    let aborted = false;
    let spawnError: Error | null = null;
    const child = spawn(file, argv, { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, opts.timeoutMs);
    const onAbort = () => {
      aborted = true;
      kill();
    };
    if (opts.signal.aborted) onAbort();
    else opts.signal.addEventListener("abort", onAbort, { once: true });

    if (opts.onStdoutLine) {
      const onLine = opts.onStdoutLine;
      readline.createInterface({ input: child.stdout }).on("line", (line) => onLine(line));
    } else {
      child.stdout.resume();
    }
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-8192);
    });
    child.on("error", (err) => {
      spawnError = err;
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      opts.signal.removeEventListener("abort", onAbort);
      if (b && !spawnError && code !== null && SHELL_CANNOT_EXEC.has(code) && /not found|cannot execute|error while loading shared libraries|Permission denied/i.test(stderrTail)) {
        spawnError = Object.assign(new Error(`${command}: ${stderrTail.trim().split("\n").at(-1) ?? "cannot run"}`), { code: code === 127 ? "ENOENT" : "EACCES" });
      }
      const hitBound =
        b !== undefined &&
        !timedOut &&
        !aborted &&
        (signal === "SIGXCPU" || signal === "SIGKILL" || /Cannot allocate memory|malloc of size \d+ failed|out of memory/i.test(stderrTail));
      resolve({ code, signal, stderrTail, timedOut, aborted, spawnError, hitBound });
    });
  });
}
