import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertPublicUrlHost } from "./check-target.js";
import { EgressRefusedError, findEgressRefusal } from "./egress-refused-error.js";
import { createGuardedAgent, createGuardedLookup } from "./guarded-agent.js";
import { staticResolver } from "./resolve.js";

let server: Server;
let port = 0;
let hits = 0;

beforeAll(async () => {
  server = createServer((_req, res) => {
    hits += 1;
    res.end("ok");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const resolve = staticResolver({
  "media.fleet.internal": ["127.0.0.1"],
  "split.fleet.internal": ["93.184.216.34", "10.0.0.7"],
  "public.fleet.internal": ["93.184.216.34", "2606:4700:4700::1111"],
});

async function refusalOf(url: string, allowPrivate = false): Promise<EgressRefusedError | null> {
  const agent = createGuardedAgent({ allowPrivate, resolve, connectTimeoutMs: 2_000 });
  try {
    const res = await request(url, { dispatcher: agent });
    await res.body.dump();
    return null;
  } catch (err) {
    return findEgressRefusal(err);
  } finally {
    await agent.close();
  }
}

describe("createGuardedAgent", () => {
  it("refuses to connect to an IP literal in a non-public range, before any byte is sent", async () => {
    const before = hits;
    for (const host of ["127.0.0.1", "[::ffff:127.0.0.1]", "[::ffff:0:7f00:1]", "[::7f00:1]", "[64:ff9b::7f00:1]"]) {
      const refusal = await refusalOf(`http://${host}:${port}/x`);
      expect(refusal, host).toBeInstanceOf(EgressRefusedError);
    }
    expect(hits).toBe(before);
  });

  it("refuses a name that resolves to a private address, and a name with any private address among public ones", async () => {
    const before = hits;
    expect((await refusalOf(`http://media.fleet.internal:${port}/x`))?.address).toBe("127.0.0.1");
    expect((await refusalOf(`http://media.fleet.internal.:${port}/x`))?.address).toBe("127.0.0.1");
    expect((await refusalOf(`http://split.fleet.internal:${port}/x`))?.address).toBe("10.0.0.7");
    expect(hits).toBe(before);
  });

  it("connects to private addresses when they are allowed (the LAN setting)", async () => {
    const before = hits;
    expect(await refusalOf(`http://127.0.0.1:${port}/x`, true)).toBeNull();
    expect(hits).toBe(before + 1);
  });
});

describe("createGuardedLookup", () => {
  it("hands net.connect exactly the addresses it checked", async () => {
    const lookup = createGuardedLookup(resolve);
    const all = await new Promise((done, fail) =>
      lookup("public.fleet.internal", { all: true }, (err, addresses) => (err ? fail(err) : done(addresses))),
    );
    expect(all).toEqual([
      { address: "93.184.216.34", family: 4 },
      { address: "2606:4700:4700::1111", family: 6 },
    ]);
    const v6 = await new Promise((done, fail) => lookup("public.fleet.internal", { family: 6 }, (err, address) => (err ? fail(err) : done(address))));
    expect(v6).toBe("2606:4700:4700::1111");
  });
});

describe("assertPublicUrlHost", () => {
  const check = (url: string) =>
    assertPublicUrlHost(new URL(url), { resolve }).then(
      () => null,
      (err: unknown) => findEgressRefusal(err)?.range ?? String(err),
    );

  it.each([
    ["http://localhost/a", "localhost"],
    ["http://localhost./a", "localhost"],
    ["http://LOCALHOST../a", "localhost"],
    ["http://api.localhost/a", "localhost"],
    ["http://127.0.0.1./a", "loopback"],
    ["http://[::7f00:1]/a", "ipv4Compatible"],
    ["http://[::ffff:0:7f00:1]/a", "rfc6145(loopback)"],
    ["http://[64:ff9b::a9fe:a9fe]/a", "rfc6052(linkLocal)"],
    ["http://[64:ff9b:1::a9fe:a9fe]/a", "nat64LocalUse"],
    ["http://[2002:a9fe:a9fe::]/a", "6to4(linkLocal)"],
    ["http://[fec0::1]/a", "deprecatedSiteLocal"],
    ["http://media.fleet.internal/a", "loopback"],
    ["http://media.fleet.internal./a", "loopback"],
    ["http://split.fleet.internal/a", "private"],
  ])("refuses %s (%s)", async (url, range) => {
    expect(await check(url)).toBe(range);
  });

  it("accepts a public literal, a name whose every address is public, and a name that does not resolve", async () => {
    expect(await check("https://93.184.216.34/a")).toBeNull();
    expect(await check("https://public.fleet.internal/a")).toBeNull();
    expect(await check("https://nowhere.fleet.internal/a")).toBeNull();
  });
});
