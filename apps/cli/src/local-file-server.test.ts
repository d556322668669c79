import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chooseAdvertiseHost, startLocalFileServer } from "./local-file-server.js";
import type { LocalFileServer } from "./local-file-server.js";

let dir: string;
let server: LocalFileServer;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "fleet-cli-files-"));
  server = await startLocalFileServer({ advertiseHost: "127.0.0.1" });
});
afterEach(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

describe("startLocalFileServer", () => {
  it("serves a registered file with its type and length", async () => {
    const file = join(dir, "face clip.mp4");
    await writeFile(file, Buffer.alloc(1000, 7));
    const url = await server.serve(file);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/[0-9a-f]{24}\/face%20clip\.mp4$/);
    const res = await request(url);
    const body = Buffer.from(await res.body.arrayBuffer());
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("video/mp4");
    expect(body.length).toBe(1000);
  });

  it("answers ranges, and 404 for anything it was not asked to serve", async () => {
    const file = join(dir, "voice.wav");
    await writeFile(file, Buffer.from("0123456789"));
    const url = await server.serve(file);
    const ranged = await request(url, { headers: { range: "bytes=2-5" } });
    expect(ranged.statusCode).toBe(206);
    expect(await ranged.body.text()).toBe("2345");
    const other = await request(new URL("/etc/passwd", url).toString());
    await other.body.dump();
    expect(other.statusCode).toBe(404);
    const sibling = await request(url.replace("voice.wav", "other.wav"));
    await sibling.body.dump();
    expect(sibling.statusCode).toBe(404);
  });
});

describe("chooseAdvertiseHost", () => {
  it("uses loopback when the orchestrator is on this machine", () => {
    expect(chooseAdvertiseHost("http://127.0.0.1:8080")).toBe("127.0.0.1");
    expect(chooseAdvertiseHost("http://localhost:8080")).toBe("127.0.0.1");
  });
});
