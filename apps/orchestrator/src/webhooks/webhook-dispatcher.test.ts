import { createServer } from "node:http";
import { findEgressRefusal, staticResolver } from "@fleet/egress";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createWebhookDispatcher } from "./webhook-dispatcher.js";

describe("the webhook dispatcher", () => {
  let hits = 0;
  const server = createServer((_req, res) => {
    hits += 1;
    res.writeHead(204).end();
  });
  let port = 0;
  // Names answer from a table: the rebinding case is a name that now points inside.
  const resolve = staticResolver({ "hooks.fleet.internal": ["127.0.0.1"], "split.fleet.internal": ["93.184.216.34", "::1"] });
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const address = server.address();
    port = typeof address === "object" && address ? address.port : 0;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  async function post(url: string, allowPrivate: boolean) {
    const dispatcher = createWebhookDispatcher({ allowPrivate, timeoutMs: 5000, resolve });
    try {
      const res = await request(url, { method: "POST", body: "{}", dispatcher });
      await res.body.dump();
      return { status: res.statusCode, refusal: null };
    } catch (err) {
      return { status: null, refusal: findEgressRefusal(err) };
    } finally {
      await dispatcher.close();
    }
  }

  test("refuses to connect to a hostname that resolves to a private address (DNS rebinding after the URL check)", async () => {
    const before = hits;
    expect((await post(`http://hooks.fleet.internal:${port}/hook`, false)).refusal?.address).toBe("127.0.0.1");
    expect((await post(`http://hooks.fleet.internal.:${port}/hook`, false)).refusal?.address).toBe("127.0.0.1");
    expect((await post(`http://split.fleet.internal:${port}/hook`, false)).refusal?.address).toBe("::1");
    expect(hits).toBe(before);
  });

  test.each(["127.0.0.1", "[::ffff:127.0.0.1]", "[::ffff:0:7f00:1]", "[::7f00:1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::]", "[fec0::1]"])(
    "refuses to connect to the IP literal %s, which no lookup ever sees",
    async (host) => {
      const before = hits;
      const result = await post(`http://${host}:${port}/hook`, false);
      expect(result.refusal).not.toBeNull();
      expect(hits).toBe(before);
    },
  );

  test("connects when private targets are allowed", async () => {
    const before = hits;
    expect((await post(`http://hooks.fleet.internal:${port}/hook`, true)).status).toBe(204);
    expect(hits).toBe(before + 1);
  });
});
