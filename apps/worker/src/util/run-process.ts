import { spawn } from "node:child_process";
import readline from "node:readline";

export interface ProcessOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last ~8 KB of stderr: enough for an error report, bounded for a chatty encoder. */
  stderrTail: string;
  timedOut: boolean;
  aborted: boolean;
  /** The binary could not be started at all (ENOENT...). */
  spawnError: Error | null;
}

/**
 * Runs a child process asynchronously (the original's blocking subprocess.run froze the
 * heartbeat and /hc for the whole job, §8.5), streams stdout line by line, and SIGKILLs the child
 * on abort or timeout so a cancelled job frees the machine at once.
 */
export function runProcess(
  command: string,
  args: string[],
  opts: { signal: AbortSignal; timeoutMs: number; onStdoutLine?: (line: string) => void; cwd?: string },
): Promise<ProcessOutcome> {
  return new Promise((resolve) => {
    let stderrTail = "";
    let timedOut = false;
    let aborted = false;
    let spawnError: Error | null = null;
    const child = spawn(command, args, { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
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
      resolve({ code, signal, stderrTail, timedOut, aborted, spawnError });
    });
  });
}
