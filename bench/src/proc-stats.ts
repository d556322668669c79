import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on every Linux we run on). */
const TICKS_PER_SEC = 100;

/** CPU seconds (user + system) a process has used so far; 0 if it is gone. */
export async function cpuSeconds(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SEC;
  } catch {
    return 0;
  }
}

/** VmRSS and VmHWM (peak RSS) of a process, in bytes; null if it is gone. */
export async function memory(pid: number): Promise<{ rss: number; hwm: number } | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
    return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
  } catch {
    return null;
  }
}

/**
 * A compiled script of this package beside the caller: `dist/<name>.js`. Under vitest the caller
 * is the `.ts` source, and child processes still need the built file.
 */
export function builtScript(callerUrl: string, name: string): string {
  const here = fileURLToPath(callerUrl);
  return here.endsWith(".ts") ? fileURLToPath(new URL(`../dist/${name}.js`, callerUrl)) : fileURLToPath(new URL(`./${name}.js`, callerUrl));
}
