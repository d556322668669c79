import { parseArgs } from "node:util";
import type { ParseArgsOptionsConfig } from "node:util";
import type { CliIo } from "./cli-io.js";
import type { Command, OptionValues } from "./command.js";
import { stringOption } from "./command.js";
import { cancelCommand, jobCommand } from "./commands/job.js";
import { demoCommand } from "./commands/demo.js";
import { doctorCommand } from "./commands/doctor.js";
import { drainCommand, undrainCommand } from "./commands/drain.js";
import { gpuBoxCommand } from "./commands/gpu-box.js";
import { jobsCommand } from "./commands/jobs.js";
import { keysCommand } from "./commands/keys.js";
import { submitCommand } from "./commands/submit.js";
import { workersCommand } from "./commands/workers.js";
import { loadConnectionConfig, loadLocalOutputMappings, localDataDirFrom } from "./config.js";
import { FleetApiError, FleetConnectionError, FleetProtocolError } from "./fleet-api-error.js";
import { createFleetClient, MissingKeyError } from "./fleet-client.js";
import { CommandFailed, UsageError } from "./usage-error.js";

export const COMMANDS: readonly Command[] = [
  workersCommand,
  jobsCommand,
  jobCommand,
  submitCommand,
  cancelCommand,
  drainCommand,
  undrainCommand,
  keysCommand,
  doctorCommand,
  gpuBoxCommand,
  demoCommand,
];

const GLOBAL_OPTIONS = {
  url: { type: "string" },
  "api-key": { type: "string" },
  "internal-key": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsOptionsConfig;

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "fleet: operate a Fleet orchestrator and its GPU workers",
    "",
    "usage: fleet <command> [options]",
    "",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "connection (flags or env):",
    "  --url URL             FLEET_URL, default http://127.0.0.1:8080",
    "  --api-key KEY         FLEET_API_KEY: a public API key (jobs)",
    "  --internal-key KEY    INTERNAL_API_KEY: the worker API key (workers, drain, keys; also accepted for jobs)",
    "  With none of these set, the keys of the local quick start (./fleetw start, .data/dev-keys.json) are used;",
    "  FLEET_DATA_DIR points at its data dir when it was started with --data-dir.",
    "  --json                machine-readable output",
    "",
    "exit codes: 0 ok, 1 failure, 2 usage error",
    "",
  ].join("\n");
}

function commandHelp(c: Command): string {
  return `${c.summary}\n\nusage: ${c.usage}\n\n(connection flags: --url, --api-key, --internal-key; see fleet --help)\n`;
}

export interface RunCliOptions {
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  io: CliIo;
  /** Aborted on Ctrl-C by main.ts; tests pass their own. */
  signal?: AbortSignal;
  /** Where the quick start keeps its keys (default FLEET_DATA_DIR or <repo>/.data); tests point it at an empty dir. */
  localDataDir?: string;
}

/** Parses argv, runs one command and maps every outcome to an exit code. Never calls process.exit. */
export async function runCli(opts: RunCliOptions): Promise<number> {
  const { io } = opts;
  let command: Command | undefined;
  try {
    // First pass only finds the command name, so connection flags may come before or after it.
    const first = parseArgs({ args: [...opts.argv], options: GLOBAL_OPTIONS, allowPositionals: true, strict: false, tokens: true });
    const nameToken = first.tokens.find((t) => t.kind === "positional");
    if (nameToken === undefined || nameToken.value === "help") {
      io.stdout.write(overview());
      return nameToken === undefined && first.values.help !== true ? 2 : 0;
    }
    command = COMMANDS.find((c) => c.name === nameToken.value);
    if (command === undefined) throw new UsageError(`unknown command ${nameToken.value}; run fleet --help`);
    const rest = opts.argv.filter((_, i) => i !== nameToken.index);
    const parsed = parseArgs({
      args: rest,
      options: { ...GLOBAL_OPTIONS, ...command.options },
      allowPositionals: true,
      strict: true,
    });
    const values = parsed.values as OptionValues;
    if (values.help === true) {
      io.stdout.write(commandHelp(command));
      return 0;
    }
    const localDataDir = opts.localDataDir ?? localDataDirFrom(opts.env);
    const connection = loadConnectionConfig(
      opts.env,
      { url: stringOption(values, "url"), apiKey: stringOption(values, "api-key"), internalKey: stringOption(values, "internal-key") },
      localDataDir,
    );
    try {
      new URL(connection.url);
    } catch {
      throw new UsageError(`--url / FLEET_URL is not a URL: ${connection.url}`);
    }
    const client = createFleetClient({
      baseUrl: connection.url,
      apiKey: connection.apiKey,
      internalApiKey: connection.internalApiKey,
    });
    return await command.run({
      io,
      env: opts.env,
      values,
      positionals: parsed.positionals,
      json: values.json === true,
      connection,
      client,
      localOutputs: loadLocalOutputMappings(localDataDir),
      localDataDir,
      signal: opts.signal ?? new AbortController().signal,
    });
  } catch (err) {
    return reportError(io, err, command);
  }
}

function reportError(io: CliIo, err: unknown, command: Command | undefined): number {
  if (err instanceof UsageError || (err instanceof TypeError && "code" in err && String(err.code).startsWith("ERR_PARSE_ARGS"))) {
    io.stderr.write(`fleet: ${err.message}\n`);
    if (command !== undefined) io.stderr.write(`usage: ${command.usage}\n`);
    return 2;
  }
  if (err instanceof CommandFailed) return 1;
  if (err instanceof FleetApiError) {
    const hint =
      err.status === 401
        ? "\n  the key was refused: check INTERNAL_API_KEY against the orchestrator's, and FLEET_API_KEY against `fleet keys list` (revoked?) or its PUBLIC_API_KEYS"
        : "";
    io.stderr.write(`fleet: ${err.describe()}${hint}\n`);
    return 1;
  }
  if (err instanceof FleetConnectionError || err instanceof FleetProtocolError || err instanceof MissingKeyError) {
    io.stderr.write(`fleet: ${err.message}\n`);
    return err instanceof MissingKeyError ? 2 : 1;
  }
  io.stderr.write(`fleet: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
}
