import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendFileRange } from "./send-file-range.js";

let dir: string;
let server: Server;
let url: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "fleet-send-file-"));
  const file = join(dir, "digits.bin");
  await writeFile(file, "0123456789");
  const empty = join(dir, "empty.bin");
  await writeFile(empty, "");
  server = createServer((req, res) => {
    const target = req.url === "/empty" ? { path: empty, size: 0 } : { path: file, size: 10 };
    sendFileRange(req, res, { ...target, contentType: "application/octet-stream" });
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((ok) => server.close(ok));
  await rm(dir, { recursive: true, force: true });
});

async function get(range?: string, method = "GET", path = "/file") {
  const res = await fetch(url + path, { method, headers: range ? { range } : {} });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

describe("sendFileRange", () => {
  it("sends the whole file with its type and length when no range is asked", async () => {
    const res = await get();
    expect(res).toMatchObject({ status: 200, body: "0123456789" });
    expect(res.headers.get("content-length")).toBe("10");
    expect(res.headers.get("accept-ranges")).toBe("bytes");
  });

  it("answers a closed, an open and a suffix range with 206 and its content-range", async () => {
    expect(await get("bytes=2-5")).toMatchObject({ status: 206, body: "2345" });
    expect((await get("bytes=2-5")).headers.get("content-range")).toBe("bytes 2-5/10");
    expect(await get("bytes=7-")).toMatchObject({ status: 206, body: "789" });
    expect(await get("bytes=-3")).toMatchObject({ status: 206, body: "789" });
    expect(await get("bytes=8-100")).toMatchObject({ status: 206, body: "89" });
  });

  it("refuses a range past the end with 416 and the size, and ignores an empty or malformed one", async () => {
    const past = await get("bytes=10-");
    expect(past.status).toBe(416);
    expect(past.headers.get("content-range")).toBe("bytes */10");
    expect(await get("bytes=-")).toMatchObject({ status: 200, body: "0123456789" });
    expect(await get("items=1-2")).toMatchObject({ status: 200, body: "0123456789" });
  });

  it("answers HEAD with the headers only, and an empty file with an empty body", async () => {
    const head = await get(undefined, "HEAD");
    expect(head).toMatchObject({ status: 200, body: "" });
    expect(head.headers.get("content-length")).toBe("10");
    expect(await get(undefined, "GET", "/empty")).toMatchObject({ status: 200, body: "" });
  });
});
