import { createServer } from "node:http";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createWebhookDispatcher } from "./webhook-dispatcher.js";

describe("the webhook dispatcher", () => {
  const server = createServer((_req, res) => res.writeHead(204).end());
  let port = 0;
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const address = server.address();
    port = typeof address === "object" && address ? address.port : 0;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  test("refuses to connect to a hostname that resolves to a private address (DNS rebinding after the URL check)", async () => {
    const dispatcher = createWebhookDispatcher({ allowPrivate: false, timeoutMs: 5000 });
    try {
      const err = (await request(`http://localhost:${port}/hook`, { method: "POST", body: "{}", dispatcher }).then(
        () => null,
        (e: unknown) => e,
      )) as { code?: string; cause?: { code?: string } } | null;
      expect(err).not.toBeNull();
      expect([err?.code, err?.cause?.code]).toContain("EPRIVATE");
    } finally {
      await dispatcher.close();
    }
  });

  test("connects when private targets are allowed", async () => {
    const dispatcher = createWebhookDispatcher({ allowPrivate: true, timeoutMs: 5000 });
    try {
      const res = await request(`http://localhost:${port}/hook`, { method: "POST", body: "{}", dispatcher });
      await res.body.dump();
      expect(res.statusCode).toBe(204);
    } finally {
      await dispatcher.close();
    }
  });
});
