import { describe, expect, it } from "vitest";
import { formatLogLine } from "../../../scripts/start-local-log-format.mjs";

describe("the quick start's log formatter", () => {
  it("turns an orchestrator pino line into time, level, event and fields", () => {
    const raw = JSON.stringify({ level: "info", time: new Date(Date.UTC(2026, 0, 1, 12)).toISOString(), pid: 9, hostname: "h", service: "fleet-orchestrator", msg: "server_listening", url: "http://127.0.0.1:8080" });
    expect(formatLogLine(raw)).toMatch(/^\d\d:\d\d:\d\d INFO {2}server_listening url=http:\/\/127\.0\.0\.1:8080$/);
  });

  it("keeps the worker's error events with their status code and error message", () => {
    const raw = JSON.stringify({ level: "warn", time: new Date().toISOString(), service: "fleet-worker", msg: "buffer_worker_loop_error", statusCode: 401, err: { type: "Error", message: "bad key" } });
    expect(formatLogLine(raw)).toMatch(/WARN {2}buffer_worker_loop_error statusCode=401 err="bad key"$/);
  });

  it("hides routine heartbeat requests unless verbose, but never failed ones", () => {
    const line = (status: number): string =>
      JSON.stringify({ level: "info", msg: "request completed", req: { method: "POST", url: "/internal/buffer/workers/w/heartbeat" }, res: { statusCode: status }, responseTime: 1.4 });
    expect(formatLogLine(line(200))).toBeNull();
    expect(formatLogLine(line(200), { verbose: true })).toMatch(/POST \/internal\/buffer\/workers\/w\/heartbeat 200 1ms/);
    expect(formatLogLine(line(401))).toMatch(/POST \/internal\/buffer\/workers\/w\/heartbeat 401/);
  });

  it("prints lines that are not JSON as they are", () => {
    expect(formatLogLine("Error: Cannot find module 'x'")).toBe("Error: Cannot find module 'x'");
  });
});
