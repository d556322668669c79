import { createHash } from "node:crypto";
import type { CreateApiKeyResponse, JobView, ListApiKeysResponse, ListJobsResponse } from "@fleet/contract";
import { sql } from "drizzle-orm";
import { describe, expect } from "vitest";
import { queryRows } from "../db/client.js";
import { appTest, call, createJobViaApi, PUBLIC_KEY, snapshotTables, type TestApp } from "../test-support/harness.js";

/** `fleet keys create NAME` through the admin route: a new client, its key and its webhook secret. */
async function createClient(t: TestApp, name: string): Promise<CreateApiKeyResponse> {
  const res = await call<CreateApiKeyResponse>(t.app, "POST", "/internal/admin/keys", { body: { name } });
  if (res.status !== 201) throw new Error(`creating client ${name} failed: ${res.body}`);
  return res.json;
}

function asClient(key: string) {
  return { key: null, headers: { "x-api-key": key } };
}

/** The error body without what differs between any two requests (request id) and the id asked for. */
function errorShape(body: string, id: string): string {
  const parsed = JSON.parse(body) as { error: { request_id: string } };
  return JSON.stringify({ ...parsed, error: { ...parsed.error, request_id: "" } }).replaceAll(id, "<id>");
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("clients are tenants", () => {
  appTest("client B cannot read, list or cancel client A's job: it answers exactly like a missing job, and nothing changes", async ({ t }) => {
    const a = await createClient(t, "client a");
    const b = await createClient(t, "client b");
    const created = await createJobViaApi(t.app, {}, {});
    expect(created.status).toBe(201);
    const mine = await call<JobView>(t.app, "POST", "/v1/avatar/jobs", {
      ...asClient(a.key),
      body: { video_url: "https://93.184.216.34/a.mp4", audio_url: "https://93.184.216.34/a.wav" },
    });
    expect(mine.status).toBe(201);
    const id = mine.json.id;
    const missing = "7b0c9a52-7e0e-4c1e-8f6a-222222222222";
    const before = await snapshotTables(t.db);

    const read = await call(t.app, "GET", `/v1/avatar/jobs/${id}`, asClient(b.key));
    const readMissing = await call(t.app, "GET", `/v1/avatar/jobs/${missing}`, asClient(b.key));
    expect([read.status, read.error?.code]).toEqual([404, "not_found"]);
    expect(errorShape(read.body, id)).toBe(errorShape(readMissing.body, missing));

    const cancel = await call(t.app, "DELETE", `/v1/avatar/jobs/${id}`, asClient(b.key));
    const cancelMissing = await call(t.app, "DELETE", `/v1/avatar/jobs/${missing}`, asClient(b.key));
    expect([cancel.status, cancel.error?.code]).toEqual([404, "not_found"]);
    expect(errorShape(cancel.body, id)).toBe(errorShape(cancelMissing.body, missing));

    const listB = await call<ListJobsResponse>(t.app, "GET", "/v1/avatar/jobs?limit=200", asClient(b.key));
    expect(listB.json.jobs).toEqual([]);
    // The bootstrap client from PUBLIC_API_KEYS is a client like any other.
    const listBootstrap = await call<ListJobsResponse>(t.app, "GET", "/v1/avatar/jobs?limit=200", asClient(PUBLIC_KEY));
    expect(listBootstrap.json.jobs.map((j) => j.id)).toEqual([created.json.id]);
    expect((await call(t.app, "GET", `/v1/avatar/jobs/${id}`, asClient(PUBLIC_KEY))).status).toBe(404);
    expect((await call(t.app, "GET", `/v1/avatar/jobs/${created.json.id}`, asClient(a.key))).status).toBe(404);

    expect(await snapshotTables(t.db)).toBe(before);
    expect((await call<JobView>(t.app, "GET", `/v1/avatar/jobs/${id}`, asClient(a.key))).json.status).toBe("queued");
    const listA = await call<ListJobsResponse>(t.app, "GET", "/v1/avatar/jobs", asClient(a.key));
    expect(listA.json.jobs.map((j) => j.id)).toEqual([id]);
    // The internal key sees every client's jobs.
    const all = await call<ListJobsResponse>(t.app, "GET", "/v1/avatar/jobs");
    expect(new Set(all.json.jobs.map((j) => j.id))).toEqual(new Set([id, created.json.id]));
    expect((await call(t.app, "DELETE", `/v1/avatar/jobs/${id}`, asClient(a.key))).status).toBe(200);
  });

  appTest("idempotency keys are scoped per client: the same key from two clients makes two jobs, and neither sees the other's", async ({ t }) => {
    const a = await createClient(t, "client a");
    const b = await createClient(t, "client b");
    const send = (key: string, metadata: Record<string, unknown>) =>
      call<JobView>(t.app, "POST", "/v1/avatar/jobs", {
        key: null,
        headers: { "x-api-key": key, "idempotency-key": "order-4711" },
        body: { video_url: "https://93.184.216.34/a.mp4", audio_url: "https://93.184.216.34/a.wav", metadata },
      });
    const first = await send(a.key, { who: "a" });
    expect(first.status).toBe(201);
    // Another body under the same key is not a conflict for another client: it is its own job.
    const other = await send(b.key, { who: "b" });
    expect(other.status).toBe(201);
    expect(other.json.id).not.toBe(first.json.id);
    expect(other.json.metadata).toEqual({ who: "b" });
    expect((await send(b.key, { who: "b" })).json.id).toBe(other.json.id);
    const replay = await send(a.key, { who: "a" });
    expect([replay.status, replay.json.id]).toEqual([200, first.json.id]);
    const conflict = await send(a.key, { who: "b" });
    expect([conflict.status, conflict.error?.code]).toEqual([409, "idempotency_conflict"]);
    // The internal key is its own client for idempotency too.
    const internal = await call<JobView>(t.app, "POST", "/v1/avatar/jobs", {
      headers: { "idempotency-key": "order-4711" },
      body: { video_url: "https://93.184.216.34/a.mp4", audio_url: "https://93.184.216.34/a.wav" },
    });
    expect(internal.status).toBe(201);
    const [count] = await queryRows<{ n: number }>(t.db.db, sql`select count(*)::int as n from jobs`);
    expect(count?.n).toBe(3);
  });

  appTest("a revoked key is refused at once by the orchestrator that revoked it and within AUTH_CACHE_SEC by another, without a restart", async ({ t, startApp }) => {
    // A second replica on the same database, caching lookups for the default 5 s.
    const replica = await startApp();
    const a = await createClient(t, "client a");
    expect((await call(t.app, "GET", "/v1/avatar/jobs", asClient(a.key))).status).toBe(200);
    expect((await call(replica.app, "GET", "/v1/avatar/jobs", asClient(a.key))).status).toBe(200);

    const revoked = await call<{ api_key: { revoked_at: string | null } }>(t.app, "POST", `/internal/admin/keys/${a.api_key.prefix}/revoke`);
    expect(revoked.status).toBe(200);
    expect(revoked.json.api_key.revoked_at).not.toBeNull();
    const refused = await call(t.app, "GET", "/v1/avatar/jobs", asClient(a.key));
    expect([refused.status, refused.error?.code]).toEqual([401, "unauthorized"]);
    const created = await call(t.app, "POST", "/v1/avatar/jobs", {
      ...asClient(a.key),
      body: { video_url: "https://93.184.216.34/a.mp4", audio_url: "https://93.184.216.34/a.wav" },
    });
    expect(created.status).toBe(401);
    const started = Date.now();
    await waitFor("the replica to refuse the revoked key", async () => (await call(replica.app, "GET", "/v1/avatar/jobs", asClient(a.key))).status === 401);
    // Generous for a loaded machine; the cache period itself is 5 s.
    expect(Date.now() - started).toBeLessThan(15_000);

    const listed = await call<ListApiKeysResponse>(t.app, "GET", "/internal/admin/keys");
    const row = listed.json.keys.find((k) => k.prefix === a.api_key.prefix);
    expect(row).toMatchObject({ client_name: "client a", bootstrap: false });
    expect(row?.revoked_at).not.toBeNull();
    expect(row?.last_used_at).not.toBeNull();
    expect(listed.body).not.toContain(a.key);
    // Revoking again changes nothing; an unknown prefix is a 404.
    const again = await call<{ api_key: { revoked_at: string } }>(t.app, "POST", `/internal/admin/keys/${a.api_key.id}/revoke`);
    expect(again.json.api_key.revoked_at).toBe(revoked.json.api_key.revoked_at);
    expect((await call(t.app, "POST", "/internal/admin/keys/fk_00000000/revoke")).error?.code).toBe("not_found");
    for (const ref of ["%00", "fk%20x", "%E2%9C%93"]) {
      const bad = await call(t.app, "POST", `/internal/admin/keys/${ref}/revoke`);
      expect([bad.status, bad.error?.code], ref).toEqual([400, "invalid_request"]);
    }
  });

  appTest("each PUBLIC_API_KEYS entry becomes one client at start, once, and a key revoked since stays revoked across restarts", async ({ startApp }) => {
    const env = { PUBLIC_API_KEYS: "bootstrap-key-one-0001, bootstrap-key-two-0002" };
    const first = await startApp(env);
    // Bootstrap keys are shown by part of their hash, never by part of the key.
    const secondKeyPrefix = `sha256:${createHash("sha256").update("bootstrap-key-two-0002").digest("hex").slice(0, 12)}`;
    const keys = (await call<ListApiKeysResponse>(first.app, "GET", "/internal/admin/keys")).json.keys;
    expect(keys).toHaveLength(2);
    expect(keys.every((k) => k.bootstrap && k.prefix.startsWith("sha256:") && k.revoked_at === null)).toBe(true);
    expect(new Set(keys.map((k) => k.client_id)).size).toBe(2);
    expect(keys.map((k) => k.prefix)).toContain(secondKeyPrefix);
    const one = await call<JobView>(first.app, "POST", "/v1/avatar/jobs", {
      ...asClient("bootstrap-key-one-0001"),
      body: { video_url: "https://93.184.216.34/a.mp4", audio_url: "https://93.184.216.34/a.wav" },
    });
    expect(one.status).toBe(201);
    expect((await call(first.app, "GET", `/v1/avatar/jobs/${one.json.id}`, asClient("bootstrap-key-two-0002"))).status).toBe(404);
    // Stopped before the next start: the keys are read again from PUBLIC_API_KEYS at startup.
    await first.close();
    // Two replicas starting at once over the same keys still make one client per key.
    const [again, twin] = await Promise.all([startApp(env), startApp(env)]);
    const [counts] = await queryRows<{ clients: number; keys: number }>(
      again.db.db,
      sql`select (select count(*)::int from clients where bootstrap) as clients, (select count(*)::int from api_keys) as keys`,
    );
    expect(counts).toEqual({ clients: 2, keys: 2 });
    const revoke = await call(again.app, "POST", `/internal/admin/keys/${encodeURIComponent(secondKeyPrefix)}/revoke`);
    expect(revoke.status).toBe(200);
    await twin.close();
    await again.close();
    const restarted = await startApp(env);
    expect((await call(restarted.app, "GET", "/v1/avatar/jobs", asClient("bootstrap-key-two-0002"))).status).toBe(401);
    expect((await call(restarted.app, "GET", "/v1/avatar/jobs", asClient("bootstrap-key-one-0001"))).status).toBe(200);
    // The harness's own keys are not configured here: they were never clients of this database.
    expect((await call(restarted.app, "GET", "/v1/avatar/jobs", asClient(PUBLIC_KEY))).status).toBe(401);
  });

  appTest("the admin routes take the internal key only, and show a key and a webhook secret once, at creation", async ({ t }) => {
    const a = await createClient(t, "client a");
    expect(a.key).toMatch(/^fk_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$/);
    expect(a.key.startsWith(`${a.api_key.prefix}_`)).toBe(true);
    expect(a.webhook_secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    for (const headers of [{ "x-api-key": a.key }, { "x-api-key": PUBLIC_KEY }]) {
      const res = await call(t.app, "GET", "/internal/admin/keys", { key: null, headers });
      expect([res.status, res.error?.code]).toEqual([401, "unauthorized"]);
    }
    const list = await call<ListApiKeysResponse>(t.app, "GET", "/internal/admin/keys");
    expect(list.body).not.toContain(a.key);
    expect(list.body).not.toContain(a.webhook_secret);
    const [stored] = await queryRows<{ key_hash: string }>(t.db.db, sql`select key_hash from api_keys where prefix = ${a.api_key.prefix}`);
    expect(stored?.key_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(t.logs.join("\n")).not.toContain(a.key);
    const bad = await call(t.app, "POST", "/internal/admin/keys", { body: { name: "" } });
    expect([bad.status, bad.error?.code]).toEqual([400, "invalid_request"]);
  });
});
