import { describe, expect, it } from "vitest";
import { GroupCommit } from "./group-commit.js";

/** A flush the test releases by hand, recording each batch it was given. */
function manualFlush() {
  const batches: number[][] = [];
  const releases: (() => void)[] = [];
  const flush = (items: number[]) => {
    batches.push(items);
    return new Promise<number[]>((resolve) => releases.push(() => resolve(items.map((i) => i * 10))));
  };
  return { batches, releases, flush };
}

const endOfTurn = () => new Promise((resolve) => setImmediate(resolve));

describe("GroupCommit", () => {
  it("writes what was submitted in one event-loop turn together, and what arrives during a flush as the next batch", async () => {
    const m = manualFlush();
    const group = new GroupCommit(m.flush);
    const first = [group.submit(1), group.submit(5)];
    expect(m.batches).toEqual([]);
    await endOfTurn();
    expect(m.batches).toEqual([[1, 5]]);
    const rest = [2, 3, 4].map((i) => group.submit(i));
    expect(m.batches).toHaveLength(1);
    m.releases[0]!();
    expect(await Promise.all(first)).toEqual([10, 50]);
    await Promise.resolve();
    expect(m.batches).toEqual([[1, 5], [2, 3, 4]]);
    m.releases[1]!();
    expect(await Promise.all(rest)).toEqual([20, 30, 40]);
  });

  it("caps a batch at maxBatch and fails every item of a batch whose flush throws, and only those", async () => {
    let calls = 0;
    const group = new GroupCommit<number, number>((items) => {
      calls++;
      if (items.includes(3)) return Promise.reject(new Error("database down"));
      return Promise.resolve(items);
    }, 2);
    const results = await Promise.allSettled([1, 2, 3, 4, 5].map((i) => group.submit(i)));
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected", "rejected", "fulfilled"]);
    // [1, 2], then [3, 4] (fails together), then [5].
    expect(calls).toBe(3);
  });
});
