import { randomUUID } from "node:crypto";
import { HeartbeatReply } from "@fleet/contract";
import { describe, expect, it } from "vitest";
import { claimBlockedBy, generateRefusal, heartbeatStatus, planReply, reportedStatus, type WorkerSnapshot } from "./worker-state.js";

/** An idle worker that may claim: every test changes only what it is about. */
function snap(over: Partial<WorkerSnapshot> = {}): WorkerSnapshot {
  return {
    draining: false,
    drainRequested: false,
    running: 0,
    freeSlots: 1,
    readiness: { engine: { driver: "ffmpeg", state: "ready", detail: null }, storage: { kind: "local", state: "ready", detail: null } },
    readyToClaim: true,
    heartbeatHealthy: true,
    fleetProtocol: true,
    ...over,
  };
}

const engineIs = (state: "error" | "unavailable" | "starting", detail: string | null = "down") =>
  ({ engine: { driver: "http", state, detail }, storage: { kind: "local", state: "ready", detail: null } }) as const;

describe("reportedStatus", () => {
  it("says idle when nothing runs and every part is ready", () => {
    expect(reportedStatus(snap())).toEqual({ status: "idle", error: null });
  });

  it("says draining on SIGTERM or an orchestrator's drain, even while jobs run", () => {
    expect(reportedStatus(snap({ draining: true, running: 1 })).status).toBe("draining");
    expect(reportedStatus(snap({ drainRequested: true }))).toEqual({ status: "draining", error: null });
  });

  it("says busy while a job runs, whatever the engine reports", () => {
    expect(reportedStatus(snap({ running: 1, readiness: engineIs("error") }))).toEqual({ status: "busy", error: null });
  });

  it("says error with the engine's detail when the engine is in error or unavailable", () => {
    expect(reportedStatus(snap({ readiness: engineIs("unavailable", "ECONNREFUSED") }))).toEqual({ status: "error", error: "inference engine unavailable: ECONNREFUSED" });
    expect(reportedStatus(snap({ readiness: engineIs("error", null) }))).toEqual({ status: "error", error: "inference engine error:" });
  });

  it("says idle while the engine is still starting", () => {
    expect(reportedStatus(snap({ readiness: engineIs("starting") })).status).toBe("idle");
  });

  it("says error when the storage check failed, but not before the first check answered", () => {
    const engine = { driver: "ffmpeg", state: "ready", detail: null } as const;
    expect(reportedStatus(snap({ readiness: { engine, storage: { kind: "b2", state: "failed", detail: "bad key" } } }))).toEqual({
      status: "error",
      error: "storage not ready: bad key",
    });
    expect(reportedStatus(snap({ readiness: { engine, storage: { kind: "b2", state: "unchecked", detail: null } } })).status).toBe("idle");
  });
});

describe("heartbeatStatus", () => {
  it("passes every status through to an orchestrator known to be Fleet", () => {
    const s = snap({ drainRequested: true });
    expect(heartbeatStatus(s, reportedStatus(s))).toBe("draining");
  });

  it("speaks only idle and busy until a reply proves the orchestrator is Fleet", () => {
    const draining = snap({ draining: true, fleetProtocol: false });
    expect(heartbeatStatus(draining, reportedStatus(draining))).toBe("idle");
    const drainingBusy = snap({ draining: true, running: 2, fleetProtocol: false });
    expect(heartbeatStatus(drainingBusy, reportedStatus(drainingBusy))).toBe("busy");
    const broken = snap({ readiness: engineIs("error"), fleetProtocol: false });
    expect(heartbeatStatus(broken, reportedStatus(broken))).toBe("idle");
  });
});

describe("claimBlockedBy", () => {
  it("allows a claim when heartbeat, engine, storage and a slot are all there", () => {
    expect(claimBlockedBy(snap())).toBeNull();
  });

  it("names the first reason in order: draining, drain requested, heartbeat, readiness, capacity", () => {
    const all = { draining: true, drainRequested: true, heartbeatHealthy: false, readyToClaim: false, freeSlots: 0 };
    expect(claimBlockedBy(snap(all))).toBe("draining");
    expect(claimBlockedBy(snap({ ...all, draining: false }))).toBe("drain_requested");
    expect(claimBlockedBy(snap({ ...all, draining: false, drainRequested: false }))).toBe("heartbeat_not_accepted");
    expect(claimBlockedBy(snap({ freeSlots: 0 }))).toBe("at_capacity");
  });

  it("blames storage when it is not ready, else names the engine's state", () => {
    const engine = { driver: "ffmpeg", state: "ready", detail: null } as const;
    expect(claimBlockedBy(snap({ readyToClaim: false, readiness: { engine, storage: { kind: "b2", state: "unchecked", detail: null } } }))).toBe("storage_not_ready");
    expect(claimBlockedBy(snap({ readyToClaim: false, readiness: engineIs("unavailable") }))).toBe("engine_unavailable");
  });
});

describe("generateRefusal", () => {
  it("refuses while draining on SIGTERM and when no slot is free, not on an orchestrator's drain", () => {
    expect(generateRefusal(snap({ draining: true }))).toBe("draining");
    expect(generateRefusal(snap({ freeSlots: 0 }))).toBe("full");
    expect(generateRefusal(snap({ drainRequested: true }))).toBeNull();
  });
});

describe("planReply", () => {
  const reply = (body: object) => HeartbeatReply.parse({ heartbeat_interval_sec: 5, ...body });

  it("aborts cancelled jobs as cancelled and lost ones as lost", () => {
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    expect(planReply(reply({ cancel: [a], lost: [b, c] }), false).aborts).toEqual([
      { bufferJobId: a, reason: "cancelled" },
      { bufferJobId: b, reason: "lost" },
      { bufferJobId: c, reason: "lost" },
    ]);
  });

  it("reports a drain flag only when the reply changes it", () => {
    expect(planReply(reply({ drain: true }), false).drainRequested).toBe(true);
    expect(planReply(reply({ drain: true }), true).drainRequested).toBeNull();
    expect(planReply(reply({}), true).drainRequested).toBe(false);
    expect(planReply(reply({}), false)).toEqual({ aborts: [], drainRequested: null });
  });
});
