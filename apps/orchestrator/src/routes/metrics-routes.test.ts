import { expect } from "vitest";
import type { DatabaseHandle } from "../db/client.js";
import { appTest, call, createJobId, type TestApp } from "../test-support/harness.js";

/** The handle the app gets, counting every statement it sends through `db.execute`. */
function countingDatabase(statements: { count: number }) {
  return (handle: DatabaseHandle): DatabaseHandle => ({
    ...handle,
    db: new Proxy(handle.db, {
      get(target, property, receiver) {
        if (property !== "execute") return Reflect.get(target, property, receiver) as unknown;
        return (...args: Parameters<DatabaseHandle["db"]["execute"]>) => {
          statements.count += 1;
          return target.execute(...args);
        };
      },
    }),
  });
}

async function until<T>(what: string, read: () => Promise<T>, ok: (value: T) => boolean, ceilingMs = 20_000): Promise<T> {
  const deadline = Date.now() + ceilingMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)} after ${ceilingMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const scrape = async (t: TestApp, headers: Record<string, string> = {}) =>
  call(t.app, "GET", "/metrics", { key: null, headers });

appTest("fifty concurrent scrapes run no SQL: the gauges come from the refresher's cache", async ({ startApp }) => {
  const statements = { count: 0 };
  const t = await startApp({ METRICS_REFRESH_SEC: "3600" }, { wrapDatabase: countingDatabase(statements) });
  // The refresher's first pass runs at start; until it lands, scrapes carry only the counters.
  await until("first gauge refresh", () => scrape(t).then((r) => r.body), (body) => body.includes("fleet_gauges_age_seconds"));
  expect(statements.count).toBeGreaterThanOrEqual(1);
  const before = statements.count;
  const responses = await Promise.all(Array.from({ length: 50 }, () => scrape(t)));
  expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
  expect(responses.every((r) => r.body.includes('fleet_jobs{status="queued"} 0'))).toBe(true);
  expect(statements.count - before).toBe(0);
});

appTest("the gauges follow the database within the refresh interval", async ({ startApp }) => {
  const t = await startApp({ METRICS_REFRESH_SEC: "0.2" });
  await createJobId(t.app);
  await createJobId(t.app);
  await until("two queued jobs on /metrics", () => scrape(t).then((r) => r.body), (body) => body.includes('fleet_jobs{status="queued"} 2'));
});

appTest("with METRICS_TOKEN set, a scrape needs the bearer token; without it, /metrics stays open", async ({ startApp }) => {
  const token = "metrics-token-0123456789";
  const locked = await startApp({ METRICS_TOKEN: token });
  const refused: Record<string, string>[] = [{}, { authorization: "Bearer wrong-token-0123456789" }, { authorization: token }, { "x-internal-api-key": "internal-test-key-0001" }];
  for (const headers of refused) {
    const res = await scrape(locked, headers);
    expect([res.status, res.error?.code], JSON.stringify(headers)).toEqual([401, "unauthorized"]);
    expect(res.body).not.toContain("fleet_claims_total");
  }
  const ok = await scrape(locked, { authorization: `Bearer ${token}` });
  expect(ok.status).toBe(200);
  expect(ok.body).toContain("fleet_claims_total");
  const open = await startApp();
  expect((await scrape(open)).status).toBe(200);
});
