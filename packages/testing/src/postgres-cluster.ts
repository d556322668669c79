import { freePort } from "./free-port.js";
import { execFile, execFileSync } from "node:child_process";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { postgresBinDir, unprivilegedUser } from "./pg-binaries.js";

const run = promisify(execFile);

export interface ThrowawayPostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust auth). */
  url: string;
  port: number;
  dataDir: string;
  /** `fast` closes client connections cleanly; `immediate` is a crash (no checkpoint). */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Stops the server and deletes its files. */
  destroy(): Promise<void>;
}

/** The spawn options that run a PostgreSQL tool as an unprivileged user when we are root. */
function runAsOptions(): { uid?: number; gid?: number } {
  const user = unprivilegedUser();
  return user ? { uid: user.uid, gid: user.gid } : {};
}

async function pgTool(binary: string, args: string[]): Promise<void> {
  try {
    await run(join(postgresBinDir(), binary), args, { timeout: 60_000, ...runAsOptions() });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${binary} ${args.join(" ")} failed: ${e.stderr || e.stdout || e.message}`, { cause: err });
  }
}

export interface ThrowawayPostgresOptions {
  /** Extra `-c name=value` settings, e.g. `max_connections=300` for a server shared by a whole test run. */
  settings?: Record<string, string | number>;
}

/**
 * A private PostgreSQL cluster for tests that stop or restart the database (and the fallback
 * server of a whole test run): `initdb` in a temp dir, trust auth, listening on a free 127.0.0.1
 * port, from the npm-shipped binaries (pg-binaries.ts). It never touches the machine's shared
 * server. Costs ~1-2 s to create.
 */
export async function startThrowawayPostgres(opts: ThrowawayPostgresOptions = {}): Promise<ThrowawayPostgres> {
  const root = await mkdtemp(join(tmpdir(), "fleet-pg-"));
  const dataDir = join(root, "data");
  const user = unprivilegedUser();
  if (user) await chown(root, user.uid, user.gid);
  await pgTool("initdb", ["-D", dataDir, "-A", "trust", "-U", "postgres", "--no-sync", "--no-instructions", "-E", "UTF8"]);
  const port = await freePort();
  const logFile = join(root, "postgres.log");
  const settings = Object.entries(opts.settings ?? {}).map(([name, value]) => `-c ${name}=${value}`);
  const options = [`-p ${port}`, `-k ${root}`, "-c listen_addresses=127.0.0.1", "-c fsync=off", "-c full_page_writes=off", ...settings].join(" ");

  let running = false;
  const start = async () => {
    await pgTool("pg_ctl", ["-D", dataDir, "-l", logFile, "-o", options, "-w", "-t", "60", "start"]);
    running = true;
  };
  const stop = async (mode: "fast" | "immediate" = "fast") => {
    if (!running) return;
    await pgTool("pg_ctl", ["-D", dataDir, "-m", mode, "-w", "-t", "60", "stop"]);
    running = false;
  };
  // If the test process dies without destroy(), do not leave a postmaster behind.
  const onExit = () => {
    if (!running) return;
    try {
      execFileSync(join(postgresBinDir(), "pg_ctl"), ["-D", dataDir, "-m", "immediate", "stop"], { stdio: "ignore", ...runAsOptions() });
    } catch {
      // best effort at exit
    }
  };
  process.once("exit", onExit);

  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    stop,
    start,
    async restart() {
      await stop();
      await start();
    },
    async destroy() {
      try {
        await stop("immediate");
      } finally {
        process.off("exit", onExit);
        await rm(root, { recursive: true, force: true });
      }
    },
  };
}
