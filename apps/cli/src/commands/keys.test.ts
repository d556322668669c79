import { request } from "undici";
import { migratePostgresUrl } from "@fleet/orchestrator";
import { startOrchestratorProcess } from "@fleet/testing/orchestrator-process";
import type { OrchestratorProcess } from "@fleet/testing/orchestrator-process";
import { createTestDatabases } from "@fleet/testing/postgres";
import type { TestDatabase, TestDatabases } from "@fleet/testing/postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runFleet } from "../testing/run-fleet.js";

let databases: TestDatabases;
let database: TestDatabase;
let orchestrator: OrchestratorProcess;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  databases = await createTestDatabases({ migrate: migratePostgresUrl, prefix: "fleet_cli_keys" });
  database = await databases.clone();
  orchestrator = await startOrchestratorProcess({ databaseUrl: database.url });
  env = { FLEET_URL: orchestrator.url, INTERNAL_API_KEY: orchestrator.internalApiKey };
}, 120_000);

afterAll(async () => {
  await orchestrator?.stop();
  await database?.drop();
  await databases?.close();
}, 60_000);

function match(text: string, pattern: RegExp): string {
  const found = pattern.exec(text)?.[1];
  if (found === undefined) throw new Error(`${pattern} not in:\n${text}`);
  return found;
}

async function heartbeatWithToken(token: string, workerId: string): Promise<number> {
  const res = await request(`${orchestrator.url}/internal/buffer/workers/${workerId}/heartbeat`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ status: "idle", capacity: 1, error: null }),
  });
  await res.body.dump();
  return res.statusCode;
}

describe("fleet keys", () => {
  it("creates a client whose key works at once, lists it without the key, and revokes it without a restart", async () => {
    const created = await runFleet(["keys", "create", "acme studio"], env);
    expect(created.code, created.stderr).toBe(0);
    const key = match(created.stdout, /X-API-Key\):\s+(fk_\S+)/);
    expect(created.stdout).toMatch(/x-fleet-signature\):\s+whsec_\S+/);
    const prefix = match(created.stdout, /fleet keys revoke (fk_[0-9a-f]{8})/);

    expect((await runFleet(["jobs", "--api-key", key], { FLEET_URL: orchestrator.url })).code).toBe(0);

    const listed = await runFleet(["keys", "list"], env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^PREFIX\s+CLIENT\s+FROM\s+CREATED\s+LAST USED\s+REVOKED/);
    expect(listed.stdout).toMatch(new RegExp(`^${prefix}\\s+acme studio\\s+fleet keys create\\s+\\d+\\S* ago\\s+\\d+\\S* ago\\s+-$`, "m"));
    // The process's own PUBLIC_API_KEYS entry is a bootstrap client.
    expect(listed.stdout).toMatch(/^sha256:[0-9a-f]{12}\s+PUBLIC_API_KEYS sha256:[0-9a-f]{12}\s+PUBLIC_API_KEYS/m);
    expect(listed.stdout).not.toContain(key);

    const revoked = await runFleet(["keys", "revoke", prefix], env);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toContain(`key ${prefix} of client "acme studio" revoked`);
    const refused = await runFleet(["jobs", "--api-key", key], { FLEET_URL: orchestrator.url });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/401 unauthorized/);
    expect((await runFleet(["keys", "list"], env)).stdout).toMatch(new RegExp(`^${prefix}\\s.*revoked \\d+\\S* ago$`, "m"));
  });

  it("exits 2 on usage errors and when the internal key is missing, without calling the orchestrator", async () => {
    for (const argv of [["keys"], ["keys", "create"], ["keys", "rotate", "x"], ["keys", "list", "extra"], ["workers", "enroll"], ["workers", "enroll", "bad id"]]) {
      const run = await runFleet(argv, env);
      expect(run.code, `${argv.join(" ")}: ${run.stderr}`).toBe(2);
    }
    const noKey = await runFleet(["keys", "list"], { FLEET_URL: orchestrator.url, FLEET_API_KEY: orchestrator.publicApiKey });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain("INTERNAL_API_KEY");
    const unknown = await runFleet(["keys", "revoke", "fk_00000000"], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/404 not_found/);
  });
});

describe("fleet workers enroll / revoke-token", () => {
  it("issues a token the worker can heartbeat with as itself only, and revokes it", async () => {
    const enrolled = await runFleet(["workers", "enroll", "cli-box-1"], env);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const token = match(enrolled.stdout, /WORKER_TOKEN=(fw_\S+)/);
    expect(await heartbeatWithToken(token, "cli-box-1")).toBe(200);
    expect(await heartbeatWithToken(token, "cli-box-2")).toBe(403);

    const revoked = await runFleet(["workers", "revoke-token", "cli-box-1"], env);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toMatch(/^worker cli-box-1: revoked fw_[0-9a-f]{8}$/m);
    expect(await heartbeatWithToken(token, "cli-box-1")).toBe(401);
    const again = await runFleet(["workers", "revoke-token", "cli-box-1"], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/404 not_found/);
  });
});
