import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { BenchContext } from "./benchmark.js";
import { BENCHMARKS } from "./benchmarks.js";
import { renderReport } from "./render-report.js";
import { ScratchDatabases } from "./scratch-database.js";

// Smoke test only: every benchmark runs end to end with a handful of jobs against the real
// orchestrator/worker builds and PostgreSQL, and must produce numbers. Nothing here is timed.
const serverUrl = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const databases = new ScratchDatabases(serverUrl);
const ctx: BenchContext = { serverUrl, databases, progress: () => undefined };

beforeAll(async () => {
  // The heartbeat benchmark's load generator runs as a separate process from dist/.
  await promisify(execFile)(process.execPath, [fileURLToPath(new URL("../node_modules/typescript/bin/tsc", import.meta.url)), "-p", "tsconfig.build.json"], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
  });
}, 120_000);

afterAll(() => databases.dropAll());

describe("each benchmark runs with a tiny count and reports numbers", () => {
  for (const b of BENCHMARKS) {
    test(`${b.name} produces a finite measurement for every target and a report section`, async () => {
      const outcome = await b.run(ctx, b.smoke);
      expect(outcome.targets.length).toBeGreaterThan(0);
      for (const t of outcome.targets) expect(t.measured, t.what).toMatch(/\w/);
      for (const t of outcome.targets) expect(t.measured, t.what).not.toMatch(/NaN|–/);
      expect(outcome.blocks.some((bl) => bl.kind === "table")).toBe(true);
      const md = renderReport([{ ...outcome, name: b.name, title: b.title, command: "test", date: "2000-01-01T00:00:00Z", durationSec: 1, revision: "test", machine: { cpuModel: "cpu", cores: 1, ramGiB: 1, node: "v0", postgres: "0", os: "os", loadAtStart: 0 } }]);
      expect(md).toContain(`## ${b.title}`);
    });
  }
});

test("no scratch database outlives the benchmarks", async () => {
  const pg = (await import("pg")).default;
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>("select datname from pg_database where datname like $1", [`fleet_bench_%_${process.pid}_%`]);
    expect(rows).toEqual([]);
  } finally {
    await client.end();
  }
});
