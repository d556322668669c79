import type { ParseArgsOptionsConfig } from "node:util";
import type { CliIo } from "./cli-io.js";
import type { ConnectionConfig, LocalOutputMapping } from "./config.js";
import type { FleetClient } from "./fleet-client.js";

export type OptionValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface CommandContext {
  io: CliIo;
  env: NodeJS.ProcessEnv;
  values: OptionValues;
  positionals: string[];
  json: boolean;
  connection: ConnectionConfig;
  client: FleetClient;
  /** Local-storage workers of the quick start, to turn output URLs into file paths. */
  localOutputs: LocalOutputMapping[];
  /** The quick start's data dir (FLEET_DATA_DIR or <repo>/.data). */
  localDataDir: string;
  /** Aborted on Ctrl-C, so long waits end cleanly instead of being killed mid-write. */
  signal: AbortSignal;
}

export interface Command {
  name: string;
  summary: string;
  /** Shown by `fleet <command> --help`, after the usage line. */
  usage: string;
  options: ParseArgsOptionsConfig;
  /** Resolves to the exit code. */
  run(ctx: CommandContext): Promise<number>;
}

/** Reads a string option; parseArgs already rejected a missing value. */
export function stringOption(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}
