import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect, it } from "vitest";
import { startFactsTimer } from "./facts-timer.js";

it("gathers system facts in the background and stops when told", async () => {
  const workDir = await mkdtemp(path.join(tmpdir(), "fleet-facts-"));
  const facts = startFactsTimer({ workDir });
  try {
    expect(facts.system()).toBeNull();
    await expect.poll(() => facts.system(), { timeout: 30_000, interval: 50 }).not.toBeNull();
  } finally {
    facts.stop();
    await rm(workDir, { recursive: true, force: true });
  }
});
