import { execFileSync } from "node:child_process";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import type { Benchmark, BenchContext, BenchResult } from "./benchmark.js";
import { BENCHMARKS } from "./benchmarks.js";
import { describeMachine } from "./machine.js";
import { renderReport } from "./render-report.js";
import { ScratchDatabases } from "./scratch-database.js";

const RESULTS_DIR = new URL("../results/", import.meta.url);
const REPORT = new URL("../../BENCHMARKS.md", import.meta.url);
const FINDINGS = new URL("../FINDINGS.md", import.meta.url);
const serverUrl = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** `--smoke`: the tiny counts of the smoke test, printed and not stored (for debugging the harness). */
const smoke = process.argv.includes("--smoke");
/** `--render`: run nothing, rewrite BENCHMARKS.md from the stored results and FINDINGS.md. */
const renderOnly = process.argv.includes("--render");
const names = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const unknown = names.filter((n) => !BENCHMARKS.some((b) => b.name === n));
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark(s): ${unknown.join(", ")}; known: ${BENCHMARKS.map((b) => b.name).join(", ")}\n`);
  process.exit(2);
}
const selected = renderOnly ? [] : names.length === 0 ? BENCHMARKS : BENCHMARKS.filter((b) => names.includes(b.name));
const command = `fw pnpm -C bench bench${names.length > 0 ? ` ${names.join(" ")}` : ""}`;

const databases = new ScratchDatabases(serverUrl);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: dropping scratch databases\n`);
    void databases.dropAll().finally(() => process.exit(130));
  });
}

/** The code measured: HEAD, plus a note when the apps/packages the benchmarks run were edited since. */
function revision(): string {
  const cwd = fileURLToPath(new URL("../..", import.meta.url));
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "apps", "packages"], { cwd, encoding: "utf8" }).split("\n").filter(Boolean).length;
    return dirty > 0 ? `${head} + ${dirty} uncommitted files in apps/ and packages/` : head;
  } catch {
    return "unknown";
  }
}

async function runOne(b: Benchmark<unknown>): Promise<BenchResult> {
  const ctx: BenchContext = {
    serverUrl,
    databases,
    progress: (m) => process.stderr.write(`[${b.name}] ${m}\n`),
  };
  const machine = await describeMachine(serverUrl);
  const date = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const t0 = performance.now();
  ctx.progress(`start (load ${machine.loadAtStart})`);
  const outcome = await b.run(ctx, smoke ? b.smoke : b.defaults);
  const durationSec = (performance.now() - t0) / 1000;
  ctx.progress(`done in ${durationSec.toFixed(0)} s: ${outcome.targets.map((t) => `${t.what} ${t.measured} (${t.met ? "met" : "MISSED"})`).join("; ")}`);
  return { name: b.name, title: b.title, command, date, durationSec, machine, revision: revision(), ...outcome };
}

async function storedResults(): Promise<BenchResult[]> {
  const files = (await readdir(RESULTS_DIR).catch(() => [])).filter((f) => f.endsWith(".json"));
  return Promise.all(files.map(async (f) => JSON.parse(await readFile(new URL(f, RESULTS_DIR), "utf8")) as BenchResult));
}

let failed = 0;
await mkdir(RESULTS_DIR, { recursive: true });
try {
  for (const b of selected) {
    try {
      const result = await runOne(b);
      if (smoke) {
        process.stdout.write(JSON.stringify({ targets: result.targets, blocks: result.blocks }, null, 2) + "\n");
        continue;
      }
      await writeFile(new URL(`${b.name}.json`, RESULTS_DIR), JSON.stringify(result, null, 2) + "\n");
    } catch (err) {
      failed++;
      process.stderr.write(`[${b.name}] FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    }
  }
} finally {
  await databases.dropAll();
}
if (!smoke) {
  await writeFile(REPORT, renderReport(await storedResults(), await readFile(FINDINGS, "utf8").catch(() => "")));
  process.stderr.write(`wrote ${REPORT.pathname}\n`);
}
process.exitCode = failed > 0 ? 1 : 0;
