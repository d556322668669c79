import { describe, expect, it } from "vitest";
import { runProcess } from "./run-process.js";

const signal = () => new AbortController().signal;
const MB = 1024 * 1024;

describe("runProcess with bounds", () => {
  it("stops a child that spins past its CPU-time bound, long before the wall-clock limit", async () => {
    const started = Date.now();
    const out = await runProcess("sh", ["-c", "while :; do :; done"], { signal: signal(), timeoutMs: 60_000, bounds: { memoryBytes: 512 * MB, cpuSec: 1 } });
    expect(out).toMatchObject({ hitBound: true, timedOut: false, aborted: false });
    expect(["SIGXCPU", "SIGKILL"]).toContain(out.signal);
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it("reports a missing binary as a spawn error, as without bounds", async () => {
    const out = await runProcess("fleet-no-such-binary", [], { signal: signal(), timeoutMs: 10_000, bounds: { memoryBytes: 512 * MB, cpuSec: 5 } });
    expect(out.spawnError).toMatchObject({ code: "ENOENT" });
    expect(out.hitBound).toBe(false);
  });
});
