import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { verifyWebhook, WebhookPayload, type CreateApiKeyResponse, type JobView } from "@fleet/contract";
import { staticResolver } from "@fleet/egress";
import { sql } from "drizzle-orm";
import { describe, expect } from "vitest";
import { queryRows, type Executor } from "../db/client.js";
import {
  appTest,
  call,
  claimJob,
  createJobId,
  heartbeat,
  PUBLIC_KEY,
  reportStatus,
  type TestApp,
} from "../test-support/harness.js";
import { startWebhookDelivery } from "./webhook-delivery.js";

const SECRET = "webhook-secret-for-tests-0001";

interface Received {
  headers: IncomingMessage["headers"];
  body: string;
}

/** A webhook receiver on 127.0.0.1:0 whose answer per request the test decides. */
async function startReceiver(answer: (n: number, res: ServerResponse) => void) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      answer(received.length, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/hooks/fleet`,
    received,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function finishJob(t: TestApp, webhookUrl: string, workerId: string): Promise<string> {
  await heartbeat(t.app, workerId);
  const id = await createJobId(t.app, { webhook_url: webhookUrl });
  const job = await claimJob(t.app, workerId);
  expect(job.musetalk_job_id).toBe(id);
  await reportStatus(t.app, job.buffer_job_id, { status: "succeeded", output_url: "https://93.184.216.34/o.mp4", metrics: { total_time: 3 } });
  return id;
}

async function deliveryOf(db: Executor, jobId: string) {
  const [row] = await queryRows<{ status: string; attempts: number; last_status_code: number | null }>(
    db,
    sql`select status, attempts, last_status_code from webhook_deliveries where job_id = ${jobId}`,
  );
  return row;
}

/** Runs one job of the client holding `apiKey` to success; its webhook goes to `webhookUrl`. */
async function finishClientJob(t: TestApp, apiKey: string, webhookUrl: string, workerId: string): Promise<string> {
  await heartbeat(t.app, workerId);
  const created = await call<JobView>(t.app, "POST", "/v1/avatar/jobs", {
    key: null,
    headers: { "x-api-key": apiKey },
    body: { video_url: "https://93.184.216.34/a.mp4", audio_url: "https://93.184.216.34/a.wav", webhook_url: webhookUrl },
  });
  if (created.status !== 201) throw new Error(`create failed: ${created.body}`);
  const job = await claimJob(t.app, workerId);
  await reportStatus(t.app, job.buffer_job_id, { status: "succeeded", output_url: "https://93.184.216.34/o.mp4" });
  return created.json.id;
}

describe("terminal webhooks", () => {
  appTest("each client's deliveries are signed with its own secret: A's verify with A's only, and bootstrap clients keep WEBHOOK_SECRET", async ({ startApp }) => {
    const t = await startApp({ ALLOW_PRIVATE_NETWORK_URLS: "true", WEBHOOK_SECRET: SECRET });
    const receiver = await startReceiver((_n, res) => res.writeHead(204).end());
    const delivery = startWebhookDelivery(t.db.db, t.config, t.log, { pollMs: 100 });
    try {
      const keys = async (name: string) => (await call<CreateApiKeyResponse>(t.app, "POST", "/internal/admin/keys", { body: { name } })).json;
      const a = await keys("client a");
      const b = await keys("client b");
      expect(a.webhook_secret).not.toBe(b.webhook_secret);
      const jobA = await finishClientJob(t, a.key, `${receiver.url}?client=a`, "w1");
      const jobBootstrap = await finishClientJob(t, PUBLIC_KEY, `${receiver.url}?client=bootstrap`, "w2");
      await waitFor("both deliveries", () => receiver.received.length >= 2);
      const now = Math.floor(Date.now() / 1000);
      const byJob = (id: string) => {
        const r = receiver.received.find((x) => (JSON.parse(x.body) as { job: { id: string } }).job.id === id);
        if (!r) throw new Error(`no delivery for ${id}`);
        return { body: r.body, signature: r.headers["x-fleet-signature"] as string };
      };
      const deliveredA = byJob(jobA);
      expect(verifyWebhook(a.webhook_secret, deliveredA.body, deliveredA.signature, now)).toBe(true);
      expect(verifyWebhook(b.webhook_secret, deliveredA.body, deliveredA.signature, now)).toBe(false);
      expect(verifyWebhook(SECRET, deliveredA.body, deliveredA.signature, now)).toBe(false);
      const deliveredBootstrap = byJob(jobBootstrap);
      expect(verifyWebhook(SECRET, deliveredBootstrap.body, deliveredBootstrap.signature, now)).toBe(true);
      expect(verifyWebhook(a.webhook_secret, deliveredBootstrap.body, deliveredBootstrap.signature, now)).toBe(false);
    } finally {
      await delivery.stop();
      await receiver.close();
    }
  });

  appTest("a failing endpoint is retried with backoff until it accepts; every delivery is signed", async ({ startApp }) => {
    const t = await startApp({ ALLOW_PRIVATE_NETWORK_URLS: "true", WEBHOOK_SECRET: SECRET });
    const receiver = await startReceiver((n, res) => res.writeHead(n <= 2 ? 503 : 204).end());
    const delivery = startWebhookDelivery(t.db.db, t.config, t.log, { pollMs: 100 });
    try {
      const jobId = await finishJob(t, receiver.url, "w");
      await waitFor("the third delivery", () => receiver.received.length >= 3);
      await waitFor("the delivered status", async () => (await deliveryOf(t.db.db, jobId))?.status === "delivered");
      expect(await deliveryOf(t.db.db, jobId)).toEqual({ status: "delivered", attempts: 3, last_status_code: 204 });

      for (const r of receiver.received) {
        expect(r.headers["x-fleet-event"]).toBe("job.succeeded");
        const signature = r.headers["x-fleet-signature"];
        expect(typeof signature).toBe("string");
        expect(verifyWebhook(SECRET, r.body, signature as string, Math.floor(Date.now() / 1000))).toBe(true);
        expect(verifyWebhook("another-secret-000000", r.body, signature as string, Math.floor(Date.now() / 1000))).toBe(false);
        const payload = WebhookPayload.parse(JSON.parse(r.body));
        expect(payload.job).toMatchObject({ id: jobId, status: "succeeded", output_url: "https://93.184.216.34/o.mp4" });
      }
      // Nothing more is sent after the 2xx.
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.received).toHaveLength(3);
    } finally {
      await delivery.stop();
      await receiver.close();
    }
  });

  appTest("a hanging endpoint does not delay another job's webhook", async ({ startApp }) => {
    const t = await startApp({ ALLOW_PRIVATE_NETWORK_URLS: "true", WEBHOOK_TIMEOUT_SEC: "30" });
    const hanging = await startReceiver(() => undefined);
    const fast = await startReceiver((_n, res) => res.writeHead(200).end("ok"));
    const delivery = startWebhookDelivery(t.db.db, t.config, t.log, { pollMs: 100 });
    try {
      await finishJob(t, hanging.url, "w1");
      await waitFor("the hanging endpoint to be called", () => hanging.received.length === 1);
      const fastJob = await finishJob(t, fast.url, "w2");
      await waitFor("the fast delivery", async () => (await deliveryOf(t.db.db, fastJob))?.status === "delivered");
      // The first delivery is still waiting on its endpoint while the second one completed.
      expect(delivery.inFlight).toBe(1);
      // Unsigned when no secret is configured.
      expect(fast.received[0]?.headers["x-fleet-signature"]).toBeUndefined();
    } finally {
      await hanging.close();
      await delivery.stop();
      await fast.close();
    }
  });

  appTest("a delivery that keeps failing is given up once its retry window has passed", async ({ startApp }) => {
    const t = await startApp({ ALLOW_PRIVATE_NETWORK_URLS: "true", WEBHOOK_RETRY_WINDOW_SEC: "1" });
    const broken = await startReceiver((_n, res) => res.writeHead(500).end());
    const delivery = startWebhookDelivery(t.db.db, t.config, t.log, { pollMs: 100 });
    try {
      const jobId = await finishJob(t, broken.url, "w");
      await waitFor("the delivery to be given up", async () => (await deliveryOf(t.db.db, jobId))?.status === "failed");
      expect(broken.received.length).toBeGreaterThanOrEqual(2);
      expect(t.logs.some((l) => l.includes('"webhook_given_up"'))).toBe(true);
    } finally {
      await delivery.stop();
      await broken.close();
    }
  });

  appTest("a name accepted as public that resolves inside at delivery time (rebinding) is never connected to, and an IP-literal row is refused too", async ({ startApp }) => {
    // At submit the name is public; by delivery it points at the receiver on 127.0.0.1.
    const t = await startApp({}, { resolveHost: staticResolver({ "hooks.fleet.internal": ["93.184.216.34"] }) });
    const receiver = await startReceiver((_n, res) => res.writeHead(204).end());
    const port = new URL(receiver.url).port;
    const jobId = await finishJob(t, `http://hooks.fleet.internal:${port}/hooks/fleet`, "w");
    // A row whose URL is an IPv4-mapped literal (as if accepted before this policy existed); set
    // before the delivery loop starts, so no attempt ever sees another URL.
    const literalJob = await finishJob(t, `http://hooks.fleet.internal:${port}/hooks/fleet`, "w2");
    await t.db.db.execute(sql`update webhook_deliveries set url = ${`http://[::ffff:7f00:1]:${port}/hooks/fleet`} where job_id = ${literalJob}`);
    const delivery = startWebhookDelivery(t.db.db, t.config, t.log, { pollMs: 100, resolve: staticResolver({ "hooks.fleet.internal": ["127.0.0.1"] }) });
    try {
      for (const id of [jobId, literalJob]) {
        await waitFor("a failed delivery attempt", async () => ((await deliveryOf(t.db.db, id))?.attempts ?? 0) >= 1);
        const [row] = await queryRows<{ last_error: string | null; status: string }>(t.db.db, sql`select last_error, status from webhook_deliveries where job_id = ${id}`);
        expect(row?.status).not.toBe("delivered");
        expect(row?.last_error).toMatch(/not a public address/);
      }
      expect(receiver.received).toHaveLength(0);
    } finally {
      await delivery.stop();
      await receiver.close();
    }
  });
});
