import { describe, expect, it } from "vitest";
import { captureLogger } from "./test-support/capture-logger.js";

describe("logger", () => {
  it("writes JSON lines with the event name in msg and a string level", () => {
    const logs = captureLogger("info");
    logs.log.info({ workerId: "w1" }, "buffer_worker_loop_starting");
    expect(logs.records()[0]).toMatchObject({ msg: "buffer_worker_loop_starting", level: "info", workerId: "w1", service: "fleet-worker" });
  });

  it("redacts keys and authorization headers wherever they sit", () => {
    const logs = captureLogger("info");
    logs.log.info(
      { internalApiKey: "s3cret-1", config: { appKey: "s3cret-2" }, headers: { authorization: "Basic s3cret-3", "x-internal-api-key": "s3cret-4" } },
      "something",
    );
    expect(logs.text()).not.toMatch(/s3cret/);
  });

  it("keeps only message, code and stack of an error: an HTTP client's error drags its credentials along", () => {
    const logs = captureLogger("info");
    const err = Object.assign(new Error("Request failed with status code 401"), {
      code: "ERR_BAD_REQUEST",
      config: { headers: { Authorization: "Basic czNjcmV0LWtleQ==" }, auth: { password: "s3cret-5" } },
      response: { status: 401, data: { code: "unauthorized" } },
    });
    logs.log.error({ err }, "b2_call_failed");
    expect(logs.text()).not.toMatch(/s3cret|czNjcmV0/);
    expect(logs.records()[0]?.err).toMatchObject({ type: "Error", message: "Request failed with status code 401", code: "ERR_BAD_REQUEST" });
  });
});
