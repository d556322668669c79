import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { staticResolver } from "@fleet/egress";
import { startFileServer, type FileServer } from "@fleet/testing/file-server";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { captureLogger } from "../test-support/capture-logger.js";
import { createDownloadAgent, downloadToFile, type DownloadLimits } from "./download.js";
import { JobAbortedError, JobError } from "../errors/job-error.js";

let dir: string;
let files: FileServer;
let out: string;
const open = createDownloadAgent({ allowPrivate: true, connectTimeoutMs: 2_000 });
// Names answer from a table, never from real DNS: "split" is a name with one private answer among public ones.
const resolve = staticResolver({ "files.fleet.internal": ["127.0.0.1"], "split.fleet.internal": ["93.184.216.34", "::1"] });
const guarded = createDownloadAgent({ allowPrivate: false, connectTimeoutMs: 2_000, resolve });
const limits: DownloadLimits = { maxBytes: 1024 * 1024, timeoutMs: 5_000, attempts: 3, allowPrivate: true };

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "fleet-dl-"));
  await writeFile(path.join(dir, "clip.mp4"), Buffer.alloc(50_000, 7));
  files = await startFileServer(dir);
});
afterAll(async () => {
  await files.close();
  await open.close();
  await guarded.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  files.clearFaults();
  out = path.join(dir, `out-${Math.random().toString(36).slice(2)}`);
});

function download(url: string, opts: { limits?: Partial<DownloadLimits>; guarded?: boolean; signal?: AbortSignal } = {}) {
  return downloadToFile({
    url,
    dest: out,
    what: "video",
    limits: { ...limits, ...opts.limits },
    dispatcher: opts.guarded ? guarded : open,
    signal: opts.signal ?? new AbortController().signal,
    log: captureLogger().log,
  });
}

async function failure(p: Promise<unknown>): Promise<JobError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(JobError);
  return err as JobError;
}

describe("downloadToFile", () => {
  it("streams the file to disk", async () => {
    const res = await download(files.urlFor("/clip.mp4"));
    expect(res).toMatchObject({ bytes: 50_000, attempts: 1 });
    expect((await readFile(out)).equals(await readFile(path.join(dir, "clip.mp4")))).toBe(true);
  });

  it("follows a redirect chain", async () => {
    files.redirectChain(["/a", "/b"], "/clip.mp4");
    expect((await download(files.urlFor("/a"))).bytes).toBe(50_000);
  });

  it("does not retry a 404: the input is wrong, a download_error that is the job's fault", async () => {
    const err = await failure(download(files.urlFor("/missing.mp4")));
    expect(err.info).toMatchObject({ error_type: "download_error", stage: "download", retryable: false, fault: "job" });
    expect(files.requestCount("/missing.mp4")).toBe(1);
  });

  it("retries a 503 and succeeds when the source recovers", async () => {
    files.fault("/clip.mp4", { kind: "status", status: 503 }, { times: 2 });
    const res = await download(files.urlFor("/clip.mp4"));
    expect(res.attempts).toBe(3);
  });

  it("retries a 429 honouring Retry-After", async () => {
    files.fault("/clip.mp4", { kind: "status", status: 429, headers: { "Retry-After": "0" } }, { times: 1 });
    expect((await download(files.urlFor("/clip.mp4"))).attempts).toBe(2);
  });

  it("gives up after the attempts on a source that keeps failing, as a retryable download_error that is the job's fault", async () => {
    files.fault("/clip.mp4", { kind: "status", status: 500 });
    const before = files.requestCount("/clip.mp4");
    const err = await failure(download(files.urlFor("/clip.mp4"), { limits: { attempts: 2 } }));
    expect(err.info).toMatchObject({ error_type: "download_error", stage: "download", retryable: true, fault: "job" });
    expect(files.requestCount("/clip.mp4") - before).toBe(2);
  });

  it("refuses a declared size over the limit without reading the body", async () => {
    files.fault("/big.mp4", { kind: "bytes", bytes: 5 * 1024 * 1024 });
    const err = await failure(download(files.urlFor("/big.mp4")));
    expect(err.info).toMatchObject({ error_type: "media_error", retryable: false, fault: "job" });
    expect(err.message).toMatch(/limit/);
  });

  it("stops a chunked body once it passes the limit, and leaves no partial file", async () => {
    files.fault("/big.mp4", { kind: "bytes", bytes: 5 * 1024 * 1024, contentLength: false });
    const err = await failure(download(files.urlFor("/big.mp4")));
    expect(err.info.error_type).toBe("media_error");
    await expect(stat(out)).rejects.toThrow();
  });

  it("rejects an empty file", async () => {
    files.fault("/empty.mp4", { kind: "bytes", bytes: 0 });
    expect((await failure(download(files.urlFor("/empty.mp4")))).message).toMatch(/empty/);
  });

  it("times out a source that never answers, retrying it", async () => {
    files.fault("/clip.mp4", { kind: "hang" }, { times: 1 });
    const res = await download(files.urlFor("/clip.mp4"), { limits: { timeoutMs: 500 } });
    expect(res.attempts).toBe(2);
  });

  it("refuses loopback targets unless private URLs are allowed, by IP literal and by name", async () => {
    const before = files.requestCount("/clip.mp4");
    const literal = await failure(download(files.urlFor("/clip.mp4"), { guarded: true, limits: { allowPrivate: false } }));
    expect(literal.info).toMatchObject({ error_type: "media_error", retryable: false });
    expect(literal.message).toMatch(/ALLOW_PRIVATE_NETWORK_URLS/);
    const byName = await failure(download(files.urlFor("/clip.mp4").replace("127.0.0.1", "files.fleet.internal"), { guarded: true, limits: { allowPrivate: false } }));
    expect(byName.message).toMatch(/not allowed/);
    expect(files.requestCount("/clip.mp4") - before).toBe(0);
  });

  it.each(["[::7f00:1]", "[::ffff:0:7f00:1]", "[::ffff:7f00:1]", "[64:ff9b::a9fe:a9fe]", "[64:ff9b:1::a9fe:a9fe]", "[2002:a9fe:a9fe::]", "[fec0::1]", "0x7f.1"])(
    "refuses the IP literal %s as a media_error, sending nothing",
    async (host) => {
      const url = files.urlFor("/clip.mp4").replace("127.0.0.1", host);
      const err = await failure(download(url, { guarded: true, limits: { allowPrivate: false } }));
      expect(err.info).toMatchObject({ error_type: "media_error", retryable: false });
      expect(err.message).toMatch(/not allowed/);
    },
  );

  it("refuses at connect time too: the guarded agent checks IP literals and every resolved address itself", async () => {
    const before = files.requestCount("/clip.mp4");
    for (const host of ["127.0.0.1", "[::ffff:127.0.0.1]", "files.fleet.internal", "files.fleet.internal.", "split.fleet.internal"]) {
      const url = files.urlFor("/clip.mp4").replace("127.0.0.1", host);
      // limits.allowPrivate skips the early per-hop check, so only the agent stands in the way.
      const err = await failure(download(url, { guarded: true, limits: { allowPrivate: true } }));
      expect(err.message, host).toMatch(/not allowed/);
    }
    expect(files.requestCount("/clip.mp4") - before).toBe(0);
  });

  it("re-checks every redirect hop: a hop to a non-http scheme is refused", async () => {
    // Every hop goes through the same check as the first (scheme, IP literal, guarded lookup); a
    // loopback test server cannot play the public first hop, so the scheme check stands in here.
    files.fault("/hop", { kind: "redirect", to: "file:///etc/passwd" });
    const err = await failure(download(files.urlFor("/hop")));
    expect(err.info).toMatchObject({ error_type: "media_error", retryable: false });
    expect(err.message).toMatch(/must be http/);
  });

  it("stops at once when the job is aborted, with the abort's reason", async () => {
    files.fault("/clip.mp4", { kind: "throttle", bytesPerSec: 10_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort("cancelled"), 200);
    const err = await download(files.urlFor("/clip.mp4"), { signal: controller.signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobAbortedError);
    expect((err as JobAbortedError).reason).toBe("cancelled");
  });
});
