import { routes, type RouteName } from "@fleet/contract";
import { migratePostgresUrl } from "@fleet/orchestrator";
import { createTestDatabases, type TestDatabases } from "@fleet/testing/postgres";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { responseProblems } from "./fuzz/check-response.js";
import { FUZZ_INTERNAL_KEY, startFuzzApp, type FuzzApp } from "./fuzz/fuzz-app.js";
import { garbageValue, headerValue } from "./fuzz/garbage.js";
import { corpusEntryFor, corpusRequest, loadRegressionCorpus } from "./fuzz/regression-corpus.js";
import { requestArb, type FuzzRequest, type FuzzWorld } from "./fuzz/route-requests.js";
import { seedWorld } from "./fuzz/seed-world.js";
import { KNOWN_BUGS, knownBugOfResponse } from "./known-bugs.js";

// The budget: runs per property, with a time cap that only guards against a hang. A property the
// cap stops before MIN_RUN_SHARE of its runs fails: a slow or stuck route must not pass unfuzzed.
const NUM_RUNS = Number(process.env.FUZZ_RUNS ?? 80);
const TIME_LIMIT_MS = Number(process.env.FUZZ_TIME_LIMIT_MS ?? 10_000);
const MIN_RUN_SHARE = 0.5;
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const REQUEST_TIMEOUT_MS = 10_000;

let databases: TestDatabases | undefined;
let fuzz: FuzzApp;
let world: FuzzWorld;
/** Responses explained by a known bug (see known-bugs.ts): counted and printed, not failed. */
const knownHits = new Map<string, number>();
/** Status codes seen per route: shows the fuzz reached past validation, not just 400s. */
const statusesSeen = new Map<string, Map<number, number>>();

beforeAll(async () => {
  databases = await createTestDatabases({ migrate: migratePostgresUrl, prefix: "fleet_fuzz" });
  const database = await databases.clone();
  fuzz = await startFuzzApp(database.url);
  world = await seedWorld(fuzz.app);
});

afterAll(async () => {
  const histogram = [...statusesSeen].map(([route, seen]) => `${route} ${[...seen].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(" ")}`);
  console.log(`[fuzz] statuses per route\n  ${histogram.join("\n  ")}`);
  for (const [id, n] of knownHits) console.log(`[fuzz] KNOWN BUG ${id}: ${n} responses — ${KNOWN_BUGS.find((b) => b.id === id)?.summary ?? ""}`);
  await fuzz?.close();
  await databases?.close();
});

async function inject(req: Pick<FuzzRequest, "method" | "url" | "headers" | "payload">) {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      fuzz.app.inject({
        method: req.method as "GET",
        url: req.url,
        headers: req.headers,
        ...(req.payload !== undefined ? { payload: req.payload } : {}),
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)), REQUEST_TIMEOUT_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** One request: the response must keep the contract's promises, and a refusal must leave every row as it was. */
async function checkRequest(req: FuzzRequest): Promise<{ status: number; body: string }> {
  const before = await fuzz.snapshot();
  const res = await inject(req);
  const seen = statusesSeen.get(req.route) ?? new Map<number, number>();
  seen.set(res.statusCode, (seen.get(res.statusCode) ?? 0) + 1);
  statusesSeen.set(req.route, seen);
  const known = knownBugOfResponse(req, { status: res.statusCode, body: res.body });
  if (known) knownHits.set(known.id, (knownHits.get(known.id) ?? 0) + 1);
  const problems = responseProblems(req, { status: res.statusCode, headers: res.headers, body: res.body }, { knownBug: known !== undefined });
  if (res.statusCode >= 400 && res.statusCode < 500) {
    const after = await fuzz.snapshot();
    if (after !== before) problems.push(`rows changed by a rejected request\n    before ${before}\n    after  ${after}`);
  }
  if (problems.length > 0) {
    throw new Error(
      `${req.method} ${req.url.slice(0, 200)} (auth ${req.auth}) → ${res.statusCode}\n  ${problems.join("\n  ")}\n  response: ${res.body.slice(0, 400)}\n` +
        `  regression-corpus.json entry: ${corpusEntryFor(req, { status: res.statusCode })}`,
    );
  }
  return { status: res.statusCode, body: res.body };
}

async function fuzzProperty(arb: fc.Arbitrary<FuzzRequest>, numRuns = NUM_RUNS): Promise<void> {
  const details = await fc.check(
    fc.asyncProperty(arb, async (req) => {
      await checkRequest(req);
    }),
    {
      numRuns,
      ...(SEED !== undefined ? { seed: SEED } : {}),
      plugins: [fc.interruptAfterTimeLimit(TIME_LIMIT_MS)],
    },
  );
  if (details.failed) throw new Error(fc.defaultReportMessage(details) ?? "property failed");
  const minRuns = Math.ceil(numRuns * MIN_RUN_SHARE);
  expect(details.numRuns, `only ${details.numRuns} of ${numRuns} runs before the ${TIME_LIMIT_MS} ms cap (at least ${minRuns} required)`).toBeGreaterThanOrEqual(minRuns);
  // Still standing: the process did not crash and the pool is healthy.
  const health = await fuzz.app.inject({ method: "GET", url: "/readyz" });
  expect(health.statusCode).toBe(200);
}

it("sees a row change when a request is accepted (the snapshot is not blind)", async () => {
  const before = await fuzz.snapshot();
  const res = await inject({ method: "POST", url: "/internal/buffer/workers/fuzz-w3/heartbeat", headers: { "x-internal-api-key": FUZZ_INTERNAL_KEY, "content-type": "application/json" }, payload: JSON.stringify({ status: "busy", capacity: 3 }) });
  expect(res.statusCode).toBe(200);
  expect(await fuzz.snapshot()).not.toBe(before);
});

describe("the regression corpus (every input that ever broke a route)", () => {
  it.each(loadRegressionCorpus().map((entry) => [entry.id, entry] as const))("%s gets its 4xx and changes no row", async (_id, entry) => {
    const res = await checkRequest(corpusRequest(entry));
    const code = (JSON.parse(res.body) as { error?: { code?: string } }).error?.code;
    expect({ status: res.status, ...(entry.expect.code ? { code } : {}) }).toEqual(entry.expect);
  });
});

describe.each(Object.keys(routes) as RouteName[])("%s", (route) => {
  it("answers anything sent with a valid key without a 5xx: 4xx carry the contract's ErrorBody and change no row", async () => {
    await fuzzProperty(requestArb({ route, world, auth: "valid" }));
  });

  // Routes open to everyone (health, readiness) have no key to get wrong.
  if (routes[route].auth !== "none") {
    it("refuses every request without a valid key with 401 and changes no row", async () => {
      await fuzzProperty(requestArb({ route, world, auth: "invalid" }), Math.ceil(NUM_RUNS / 3));
    });
  }
});

describe("paths outside the route table", () => {
  it("get a 4xx ErrorBody, never a 5xx", async () => {
    const arb = fc
      .record({
        method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"),
        path: fc.oneof(
          fc.webPath(),
          fc.constantFrom("/internal", "/internal/buffer/workers//heartbeat", "/v1/avatar/jobs/%", "/v1/avatar/jobs/%E0%A4%A", "/v1//avatar/jobs", "/%2e%2e/%2e%2e/etc/passwd", "/docs/../internal/buffer/workers"),
        ),
        body: fc.option(garbageValue),
        key: fc.option(headerValue),
      })
      .map(
        (r): FuzzRequest => ({
          route: "health",
          method: r.method,
          url: r.path.startsWith("/") ? r.path : `/${r.path}`,
          headers: { ...(r.key !== null ? { "x-internal-api-key": r.key } : {}), ...(r.body !== null ? { "content-type": "application/json" } : {}) },
          ...(r.body !== null ? { payload: JSON.stringify(r.body) } : {}),
          auth: "valid",
          matchesRoute: false,
        }),
      )
      // Real routes are covered above, with their schemas; here only what the table does not hold.
      .filter((r) => !["/health", "/healthz", "/readyz", "/openapi.json"].includes(r.url.split("?")[0] ?? "") && !r.url.startsWith("/docs"));
    await fuzzProperty(arb);
  });
});
