import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type pg from "pg";

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

/**
 * CPU seconds a process has run so far, from `/proc/<pid>/schedstat` (nanoseconds, so a short
 * drain still measures above zero, where `/stat` counts 10 ms ticks); 0 if it is gone.
 */
async function cpuSecondsPrecise(pid: number): Promise<number> {
  try {
    const [ns] = (await readFile(`/proc/${pid}/schedstat`, "utf8")).split(" ");
    return Number(ns) / 1e9;
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

/** Server processes of one database's connections (to charge PostgreSQL's CPU to a load). */
export async function backendPids(client: pg.ClientBase, database: string): Promise<number[]> {
  const { rows } = await client.query<{ pid: number }>("select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()", [database]);
  return rows.map((r) => r.pid);
}

/**
 * CPU seconds used between start() and stop() by: one process (`pid`), the PostgreSQL backends of
 * `database` (found at both ends, so connections opened meanwhile count from zero), and this process.
 */
export async function startCpuMeter(pid: number, client: pg.ClientBase, database: string) {
  const snapshot = async (pids: number[]) => new Map(await Promise.all(pids.map(async (p) => [p, await cpuSeconds(p)] as const)));
  const proc0 = await cpuSeconds(pid);
  const pg0 = await snapshot(await backendPids(client, database));
  const self0 = process.cpuUsage();
  const t0 = Date.now();
  return {
    async stop(): Promise<{ wallSec: number; processSec: number; postgresSec: number; selfSec: number }> {
      const self = process.cpuUsage(self0);
      const processSec = (await cpuSeconds(pid)) - proc0;
      const pg1 = await snapshot(await backendPids(client, database));
      const postgresSec = [...pg1].reduce((sum, [p, s]) => sum + s - (pg0.get(p) ?? 0), 0);
      return { wallSec: (Date.now() - t0) / 1000, processSec, postgresSec, selfSec: (self.user + self.system) / 1e6 };
    },
  };
}

/**
 * CPU seconds used by the PostgreSQL backends of `database` while it runs, sampled every
 * `intervalMs`: a pool that connects and disconnects meanwhile (graphile-worker's runner) is
 * counted up to its last sample, where `startCpuMeter`'s two snapshots would miss it.
 */
export function startBackendCpuSampler(client: pg.ClientBase, database: string, intervalMs = 100) {
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  let started = false;
  const sample = async () => {
    for (const pid of await backendPids(client, database)) {
      const sec = await cpuSecondsPrecise(pid);
      if (sec === 0) continue;
      // A backend that connects after the start is counted from its first tick.
      if (!first.has(pid)) first.set(pid, started ? 0 : sec);
      last.set(pid, sec);
    }
    started = true;
  };
  let sampling = sample();
  const timer = setInterval(() => {
    sampling = sampling.then(sample, sample);
  }, intervalMs);
  return {
    async stop(): Promise<number> {
      clearInterval(timer);
      await sampling.catch(() => undefined);
      await sample();
      return [...last].reduce((sum, [pid, sec]) => sum + sec - (first.get(pid) ?? sec), 0);
    },
  };
}
