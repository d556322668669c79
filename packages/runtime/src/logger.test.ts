import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";

function capture(level = "info") {
  const lines: string[] = [];
  const log = createLogger({ service: "fleet-test", level, redactPaths: ["secret", "*.secret"] }, { write: (s: string) => void lines.push(s) });
  return { log, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("createLogger", () => {
  it("writes one line shape: string level, ISO time, service, fields, the event name in msg", () => {
    const { log, records } = capture();
    log.info({ workerId: "w1" }, "some_event");
    const [record] = records();
    expect(record).toMatchObject({ level: "info", service: "fleet-test", workerId: "w1", msg: "some_event" });
    expect(new Date(String(record?.time)).toISOString()).toBe(record?.time);
    expect(record).not.toHaveProperty("name");
  });

  it("logs an error under err through the serializer, with its type, message and stack", () => {
    const { log, records } = capture();
    log.error({ err: Object.assign(new Error("boom"), { code: "E_BOOM" }) }, "something_failed");
    expect(records()[0]?.err).toMatchObject({ type: "Error", message: "boom", code: "E_BOOM", stack: expect.stringContaining("boom") as unknown });
  });

  it("censors the paths the app names", () => {
    const { log, records } = capture();
    log.info({ secret: "s3cret-1", nested: { secret: "s3cret-2" } }, "with_secrets");
    expect(JSON.stringify(records())).not.toMatch(/s3cret/);
  });
});
