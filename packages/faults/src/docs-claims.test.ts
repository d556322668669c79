import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { FAULT_DEFAULTS, FAULT_PLAN, type FaultStep } from "./fault-driver.js";

const readme = () => readFile(new URL("../README.md", import.meta.url), "utf8");

/** The fault table's rows: step numbers and what the README says happens at them. */
function faultTable(text: string): { steps: number[]; fault: string }[] {
  const lines = text.slice(text.indexOf("| step | fault |")).split("\n").slice(2);
  const end = lines.findIndex((line) => !line.startsWith("|"));
  return lines
    .slice(0, end === -1 ? undefined : end)
    .map((line) => {
      const [steps = "", fault = ""] = line.split("|").slice(1).map((c) => c.trim());
      return { steps: steps.split(",").map((n) => Number(n.trim())), fault };
    });
}

/** Words the README uses for each kind of fault. */
const WORDS: Record<FaultStep["kind"], RegExp> = {
  kill_workers: /SIGKILL one \(or two\) workers/,
  restart_orchestrator: /restart the orchestrator/,
  restart_postgres: /PostgreSQL stopped/,
  orchestrator_503: /answers 503/,
  b2_upload_failures: /B2 tokens expired/,
};

describe("the fault suite's README states what the suite does", () => {
  it("names the default number of jobs, workers and the deadline", async () => {
    const text = await readme();
    expect(text).toContain(`${FAULT_DEFAULTS.jobs} jobs`);
    expect(text).toContain(`${FAULT_DEFAULTS.workers} workers`);
    expect(text).toMatch(new RegExp(`\\| \`FAULT_JOBS\` \\| ${FAULT_DEFAULTS.jobs} \\|`));
    expect(text).toMatch(new RegExp(`\\| \`FAULT_WORKERS\` \\| ${FAULT_DEFAULTS.workers} \\|`));
    expect(text).toMatch(new RegExp(`\\| \`FAULT_DEADLINE_SEC\` \\| ${FAULT_DEFAULTS.deadlineSec} \\|`));
  });

  it("lists every step of the fault plan, in order, with the fault it injects", async () => {
    const rows = faultTable(await readme());
    const documented = new Map<number, string>();
    for (const row of rows) for (const step of row.steps) documented.set(step, row.fault);
    expect([...documented.keys()].sort((a, b) => a - b)).toEqual(FAULT_PLAN.map((_, i) => i + 1));
    for (const [i, step] of FAULT_PLAN.entries()) {
      expect(documented.get(i + 1), `step ${i + 1} (${step.kind})`).toMatch(WORDS[step.kind]);
    }
  });

  it("states each timed fault's duration as the plan has it", async () => {
    const rows = faultTable(await readme());
    const text = rows.map((r) => r.fault).join("\n");
    for (const step of FAULT_PLAN) {
      if (step.kind === "orchestrator_503" || step.kind === "b2_upload_failures") expect(text).toContain(`${step.ms / 1000} s`);
      if (step.kind === "restart_postgres") expect(text).toContain(`${step.downMs / 1000} s down`);
    }
  });
});
