import type { MachineInfo } from "./machine.js";
import type { ScratchDatabases } from "./scratch-database.js";

/** A piece of a benchmark's section in BENCHMARKS.md. */
export type Block =
  | { kind: "text"; text: string }
  | { kind: "table"; columns: readonly string[]; rows: readonly (readonly string[])[] }
  | { kind: "code"; lang: string; body: string };

/** One target from the issue, with what this run measured. */
export interface TargetCheck {
  what: string;
  target: string;
  measured: string;
  met: boolean;
}

export interface BenchOutcome {
  targets: TargetCheck[];
  blocks: Block[];
}

/** What the runner stores per benchmark (bench/results/<name>.json) and renders. */
export interface BenchResult extends BenchOutcome {
  name: string;
  title: string;
  command: string;
  date: string;
  durationSec: number;
  machine: MachineInfo;
  /** Git commit of the checkout, and how many files under apps/ and packages/ differed from it. */
  revision: string;
}

export interface BenchContext {
  /** PostgreSQL server to create scratch databases on (BENCH_DATABASE_URL). */
  serverUrl: string;
  /** Uniquely named databases on that server, dropped when the run ends (even on Ctrl-C). */
  databases: ScratchDatabases;
  /** Progress lines for the person watching; not part of the report. */
  progress(message: string): void;
}

export interface Benchmark<Options> {
  name: string;
  title: string;
  /** The full run (`pnpm bench`). */
  defaults: Options;
  /** A few jobs, for the smoke test: proves the harness works, times nothing. */
  smoke: Options;
  run(ctx: BenchContext, options: Options): Promise<BenchOutcome>;
}

export function text(t: string): Block {
  return { kind: "text", text: t };
}

export function table(columns: readonly string[], rows: readonly (readonly string[])[]): Block {
  return { kind: "table", columns, rows };
}

export function code(lang: string, body: string): Block {
  return { kind: "code", lang, body };
}
