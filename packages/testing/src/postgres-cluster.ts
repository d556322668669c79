import { execFile, execFileSync } from "node:child_process";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Debian's PostgreSQL binaries; override with PG_BIN_DIR for another layout. */
const PG_BIN = process.env.PG_BIN_DIR ?? "/usr/lib/postgresql/15/bin";

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

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** PostgreSQL refuses to run as root: as root, run its tools as the `postgres` OS user. */
function asPostgres(binary: string, args: string[]): [string, string[]] {
  const path = join(PG_BIN, binary);
  return process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--", path, ...args]] : [path, args];
}

async function pgTool(binary: string, args: string[]): Promise<void> {
  const [command, argv] = asPostgres(binary, args);
  try {
    await run(command, argv, { timeout: 60_000 });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${binary} ${args.join(" ")} failed: ${e.stderr || e.stdout || e.message}`, { cause: err });
  }
}

/**
 * A private PostgreSQL cluster for tests that stop or restart the database: `initdb` in a temp
 * dir, trust auth, listening on a free 127.0.0.1 port. It never touches the machine's shared
 * server. Costs ~1-2 s to create.
 */
export async function startThrowawayPostgres(): Promise<ThrowawayPostgres> {
  const root = await mkdtemp(join(tmpdir(), "fleet-pg-"));
  const dataDir = join(root, "data");
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    await chown(root, uid, gid);
  }
  await pgTool("initdb", ["-D", dataDir, "-A", "trust", "-U", "postgres", "--no-sync", "--no-instructions", "-E", "UTF8"]);
  const port = await freePort();
  const logFile = join(root, "postgres.log");
  const options = [`-p ${port}`, `-k ${root}`, "-c listen_addresses=127.0.0.1", "-c fsync=off", "-c full_page_writes=off"].join(" ");

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
      const [command, argv] = asPostgres("pg_ctl", ["-D", dataDir, "-m", "immediate", "stop"]);
      execFileSync(command, argv, { stdio: "ignore" });
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
