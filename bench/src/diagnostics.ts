import { table, text, type Block } from "./benchmark.js";
import type { ProfileSummary } from "./cpu-profile.js";

/** What the orchestrator logged at error level during a measurement, if anything. */
export function errorBlocks(during: string, errors: { what: string; count: number }[]): Block[] {
  if (errors.length === 0) return [text(`The orchestrator logged no errors during ${during}.`)];
  return [
    text(`**The orchestrator logged errors during ${during}** (error-level log lines, by message and cause):`),
    table(["count", "logged"], errors.map((e) => [String(e.count), e.what])),
  ];
}

export function profileBlock(intro: string, p: ProfileSummary): Block {
  return {
    kind: "table",
    columns: [`${intro} (${(p.busyMs / 1000).toFixed(1)} s busy)`, "share of busy CPU"],
    rows: p.shares.map((s) => [s.what, `${s.pct.toFixed(1)} %`]),
  };
}
