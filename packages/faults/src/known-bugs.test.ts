import { ErrorBody, HEADERS } from "@fleet/contract";
import { migratePostgresUrl } from "@fleet/orchestrator";
import { createTestDatabases } from "@fleet/testing/postgres";
import { describe, expect, it } from "vitest";
import { FUZZ_INTERNAL_KEY, FUZZ_PUBLIC_KEY, startFuzzApp } from "./fuzz/fuzz-app.js";

/*
 * One deterministic reproduction per bug the suites found. While a bug stands its test is marked
 * `it.fails` and KNOWN_BUGS has an entry; once fixed, both go and the test stays as a regression.
 */

describe("bugs these suites found stay fixed (in-process app over a real database)", () => {
  type Inject = (opts: { method: "GET" | "POST"; url: string; payload?: unknown; key?: "internal" | "public" }) => Promise<{ status: number; json: unknown; requestId: unknown }>;

  async function withApp(work: (inject: Inject) => Promise<void>) {
    const databases = await createTestDatabases({ migrate: migratePostgresUrl, prefix: "fleet_knownbug" });
    const fuzz = await startFuzzApp((await databases.clone()).url);
    try {
      await work(async ({ method, url, payload, key = "internal" }) => {
        const res = await fuzz.app.inject({
          method,
          url,
          headers: key === "internal" ? { [HEADERS.internalApiKey]: FUZZ_INTERNAL_KEY } : { [HEADERS.apiKey]: FUZZ_PUBLIC_KEY },
          ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}),
        });
        let json: unknown;
        try {
          json = res.json();
        } catch {
          json = res.body;
        }
        return { status: res.statusCode, json, requestId: res.headers[HEADERS.requestId] };
      });
    } finally {
      await fuzz.close();
      await databases.close();
    }
  }

  it("fixed, orchestrator-router-errors-off-contract: a bad %-escape and an over-long path parameter get a 400 ErrorBody and the x-request-id header", async () => {
    await withApp(async (inject) => {
      for (const request of [
        { method: "GET" as const, url: "/v1/avatar/jobs/%E0%A4%A", key: "public" as const },
        { method: "POST" as const, url: `/internal/buffer/workers/${"w".repeat(600)}/drain` },
      ]) {
        const res = await inject(request);
        const parsed = ErrorBody.safeParse(res.json);
        expect(parsed.success, JSON.stringify(res.json)).toBe(true);
        expect(res.status).toBe(400);
        expect(parsed.data?.error.code).toBe("invalid_request");
        expect(res.requestId, "x-request-id header").toBe(parsed.data?.error.request_id);
      }
    });
  });
});
