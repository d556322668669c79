import { pathFor, routes } from "@fleet/contract";
import { expect } from "vitest";
import {
  appTest,
  call,
  claimJob,
  createJobId,
  heartbeat,
  INTERNAL_KEY,
  PUBLIC_KEY,
  snapshotTables,
} from "../test-support/harness.js";
import { MAX_JSON_DEPTH } from "./json-depth.js";

const nested = (depth: number, open = "[", close = "]") => `${open.repeat(depth)}${close.repeat(depth)}`;
const nestedObject = (depth: number) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;

appTest("a body nested thousands of levels deep is a 400 on every route that reads a body, and changes no row", async ({ t }) => {
  await heartbeat(t.app, "w1");
  const jobId = await createJobId(t.app);
  const attempt = await claimJob(t.app, "w1");
  const before = await snapshotTables(t.db);
  const params = { worker_id: "w1", buffer_job_id: attempt.buffer_job_id, job_id: jobId, id: jobId, key: "fk_00000000" };
  const bodies = [nested(5_000), nestedObject(5_000), `{"metadata":${nested(20_000, "{\"x\":", "}").replaceAll("}{", "1}{")}}`, `[${nested(MAX_JSON_DEPTH)}]`];
  for (const route of Object.values(routes).filter((r) => r.method === "POST")) {
    for (const payload of bodies) {
      const res = await t.app.inject({
        method: route.method,
        url: pathFor(route.path, params),
        headers: { "content-type": "application/json", "x-internal-api-key": INTERNAL_KEY, "x-api-key": PUBLIC_KEY },
        payload,
      });
      expect([res.statusCode, res.json<{ error?: { code?: string } }>().error?.code], `${route.path} ${payload.slice(0, 20)}`).toEqual([400, "invalid_request"]);
    }
  }
  expect(await snapshotTables(t.db)).toBe(before);
  // Depth up to the limit is still an ordinary body.
  const deepMetadata = `{"video_url":"https://93.184.216.34/v.mp4","audio_url":"https://93.184.216.34/a.wav","metadata":${nestedObject(MAX_JSON_DEPTH - 1)}}`;
  const ok = await t.app.inject({ method: "POST", url: "/v1/avatar/jobs", headers: { "content-type": "application/json", "x-api-key": PUBLIC_KEY }, payload: deepMetadata });
  expect(ok.statusCode).toBe(201);
});

appTest("a list cursor of the right shape whose timestamp is not a real one is a 400, and nothing logs query parameters", async ({ t }) => {
  const uuid = "9e8d7c6b-5a49-4838-a727-161514131211";
  for (const stamp of ["2024-13-45 99:99:99+00", "2024-02-30 10:00:00+00", "2023-02-29 10:00:00+00", "0000-01-01 00:00:00+00", "2024-01-01 24:00:00+00", "2024-01-01 10:00:00+99"]) {
    const cursor = Buffer.from(JSON.stringify([stamp, uuid])).toString("base64url");
    const res = await call(t.app, "GET", `/v1/avatar/jobs?cursor=${cursor}`, { key: null, headers: { "x-api-key": PUBLIC_KEY } });
    expect([res.status, res.error?.code, res.error?.details?.[0]?.path], stamp).toEqual([400, "invalid_request", "querystring.cursor"]);
  }
  // A leap day and a real page position still work.
  const leap = Buffer.from(JSON.stringify(["2024-02-29 23:59:59.999999+05:30", uuid])).toString("base64url");
  expect((await call(t.app, "GET", `/v1/avatar/jobs?cursor=${leap}`, { key: null, headers: { "x-api-key": PUBLIC_KEY } })).status).toBe(200);
  expect(t.logs.filter((line) => /params:|"params"/.test(line) && !line.includes("[redacted]"))).toEqual([]);
});

appTest("a 5xx from a failed query is logged with its SQL and the database's error, never with its parameter values", async ({ startApp }) => {
  const secret = "presigned-secret-value-123";
  const t = await startApp({}, {
    // A route whose query fails the way a bug would, with a client's value as its parameter.
    beforeReady: (app) =>
      app.get("/boom", async () => {
        const { sql } = await import("drizzle-orm");
        await t.db.db.execute(sql`select ${secret}::int`);
        return {};
      }),
  });
  const res = await t.app.inject({ method: "GET", url: "/boom" });
  expect(res.statusCode).toBe(500);
  const line = t.logs.find((l) => l.includes('"request_failed"')) ?? "";
  expect(line).toContain("select $1::int");
  expect(line).toContain("invalid input syntax");
  expect(line).not.toContain(secret);
});
