import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../run-cli.js";

export interface FleetRun {
  code: number;
  stdout: string;
  stderr: string;
}

// A quick-start dir that does not exist: the repo's own .data/ (a developer's ./fleetw start) never leaks into tests.
const emptyDataDir = join(tmpdir(), `fleet-cli-no-quick-start-${randomBytes(6).toString("hex")}`);

/** Runs `fleet <argv>` in-process with exactly `env` (nothing from the test runner's environment). */
export async function runFleet(argv: readonly string[], env: NodeJS.ProcessEnv, opts: { signal?: AbortSignal } = {}): Promise<FleetRun> {
  let stdout = "";
  let stderr = "";
  const code = await runCli({
    argv,
    env,
    io: { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) }, isTTY: false },
    localDataDir: emptyDataDir,
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
  });
  return { code, stdout, stderr };
}
