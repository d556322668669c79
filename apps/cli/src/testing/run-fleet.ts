import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../run-cli.js";

export interface FleetRun {
  code: number;
  stdout: string;
  stderr: string;
}

// An empty quick-start dir: the repo's own .data/ (a developer's ./fleetw start) never leaks into tests.
const emptyDataDir = mkdtempSync(join(tmpdir(), "fleet-cli-nodata-"));

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
