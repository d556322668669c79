import { afterEach, describe, expect, test, vi } from "vitest";
import { WakeSignal } from "./wake-signal.js";

/** Settles pending promise callbacks without letting any timer fire (fake timers hold them). */
async function settled<T>(p: Promise<T>): Promise<"resolved" | "pending"> {
  let state: "resolved" | "pending" = "pending";
  void p.then(() => (state = "resolved"));
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return state;
}

describe("WakeSignal", () => {
  afterEach(() => vi.useRealTimers());

  test("a wake-up that lands between a claimer's statement and its wait is not lost", async () => {
    vi.useFakeTimers();
    const wake = new WakeSignal();
    const seen = wake.generation; // read before the claim statement
    wake.notify(); // the NOTIFY arrives while the statement runs: nobody is waiting yet
    expect(await settled(wake.wait(60_000, undefined, seen))).toBe("resolved");
  });

  test("with no wake-up since the claimer looked, it waits for the next one", async () => {
    vi.useFakeTimers();
    const wake = new WakeSignal();
    const waiting = wake.wait(60_000, undefined, wake.generation);
    expect(await settled(waiting)).toBe("pending");
    wake.notify();
    expect(await settled(waiting)).toBe("resolved");
  });

  test("it still wakes on its safety tick and on abort", async () => {
    vi.useFakeTimers();
    const wake = new WakeSignal();
    const ticked = wake.wait(1000);
    vi.advanceTimersByTime(1000);
    expect(await settled(ticked)).toBe("resolved");
    const controller = new AbortController();
    const aborted = wake.wait(60_000, controller.signal);
    controller.abort();
    expect(await settled(aborted)).toBe("resolved");
    expect(wake.waiting).toBe(0);
  });
});
