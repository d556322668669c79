// Over 250 lines on purpose: the whole contract of one store (b2-storage.ts) against the B2 test
// server, sharing the media written once in beforeAll and the per-test server setup below.
import { createHash, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startB2TestServer, type B2TestServer, type B2TestServerOptions } from "@fleet/testing/b2-test-server";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { B2Settings } from "../config.js";
import { JobAbortedError, JobError } from "../errors/job-error.js";
import { startB2TamperProxy, type B2TamperProxy } from "../test-support/b2-tamper-proxy.js";
import { captureLogger } from "../test-support/capture-logger.js";
import { MAX_PART_BYTES, partSizeFor } from "./b2-large-file.js";
import { createB2Storage } from "./b2-storage.js";
import { outputKey, type OutputStorage } from "./output-storage.js";

const MiB = 1024 * 1024;
let dir: string;
let small: string;
let large: string;
let b2: B2TestServer;
let proxy: B2TamperProxy | null = null;
const jobId = "3f1c2a4e-8b7d-4c3e-9a1f-2b3c4d5e6f70";
const key = outputKey("avatar/outputs", jobId, ".mp4");

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "fleet-b2-"));
  small = path.join(dir, "small.mp4");
  large = path.join(dir, "large.mp4");
  await writeFile(small, randomBytes(300_000));
  // 3.5 parts of 1 MiB: the last part is short, as it usually is.
  await writeFile(large, randomBytes(Math.round(3.5 * MiB)));
});
afterAll(() => rm(dir, { recursive: true, force: true }));
const serverOptions = { absoluteMinimumPartSize: MiB, recommendedPartSize: MiB };
beforeEach(async () => {
  b2 = await startB2TestServer(serverOptions);
});
/** Replaces this test's B2 server with one configured otherwise (the old one is closed). */
async function restartB2(opts: B2TestServerOptions): Promise<void> {
  await b2.close();
  b2 = await startB2TestServer({ ...serverOptions, ...opts });
}
afterEach(async () => {
  await proxy?.close();
  proxy = null;
  await b2.close();
});

let logs = captureLogger();
function storage(overrides: Partial<B2Settings> = {}, retryBaseMs = 100): OutputStorage {
  logs = captureLogger();
  return createB2Storage({
    log: logs.log,
    retryBaseMs,
    version: "9.9.9-test",
    settings: {
      keyId: b2.keyId,
      appKey: b2.appKey,
      bucketName: b2.bucketName,
      prefix: "avatar/outputs",
      authorizeUrl: proxy?.authorizeUrl ?? b2.authorizeUrl,
      partSizeBytes: MiB,
      largeFileThresholdBytes: 2 * MiB,
      downloadUrlTtlSec: 3600,
      cancelUnfinishedAfterMs: null,
      ...overrides,
    },
  });
}

const signal = () => new AbortController().signal;
/** Every version B2 holds of `name`: each putFile must leave exactly one. */
const versionsOf = (name: string) => b2.listFileVersions().filter((v) => v.fileName === name);
const sha1 = async (file: string) => createHash("sha1").update(await readFile(file)).digest("hex");

async function jobError(p: Promise<unknown>): Promise<JobError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(JobError);
  return err as JobError;
}

describe("B2 storage", () => {
  it("uploads to {B2_PREFIX}/{job id}.mp4 on a public bucket and returns the plain URL from the account's downloadUrl", async () => {
    await restartB2({ bucketType: "allPublic" });
    const s = storage();
    await s.check(signal());
    expect(logs.messages("b2_storage_mode")).toEqual([expect.objectContaining({ bucketType: "allPublic", links: "public", linkTtlSec: null })]);
    const stored = await s.putFile({ filePath: small, key, contentType: "video/mp4", signal: signal() });
    expect(key).toBe(`avatar/outputs/${jobId}.mp4`);
    expect(stored.url).toBe(`${b2.url}/file/${b2.bucketName}/avatar/outputs/${jobId}.mp4`);
    expect(stored.sha1).toBe(await sha1(small));
    expect((await b2.readObject(key)).equals(await readFile(small))).toBe(true);
    const res = await fetch(stored.url);
    expect(Buffer.from(await res.arrayBuffer()).equals(await readFile(small))).toBe(true);
    expect(versionsOf(key)).toHaveLength(1);
    expect(b2.requestCount("get_download_authorization")).toBe(0);
  });

  it("on a private bucket hands out a link authorized for that one output", async () => {
    const s = storage();
    await s.check(signal());
    expect(logs.messages("b2_storage_mode")).toEqual([expect.objectContaining({ bucketType: "allPrivate", links: "authorized", linkTtlSec: 3600 })]);
    const stored = await s.putFile({ filePath: small, key, contentType: "video/mp4", signal: signal() });
    const sidecar = await s.putJson({ key: key.replace(/\.mp4$/, ".json"), value: { ok: true }, signal: signal() });
    const url = new URL(stored.url);
    expect(`${url.origin}${url.pathname}`).toBe(`${b2.url}/file/${b2.bucketName}/avatar/outputs/${jobId}.mp4`);
    expect(url.searchParams.get("Authorization")).toMatch(/\S/);
    expect((await fetch(`${url.origin}${url.pathname}`)).status).toBe(401);
    const res = await fetch(stored.url);
    expect(Buffer.from(await res.arrayBuffer()).equals(await readFile(small))).toBe(true);
    // The video's link does not open the sidecar: each link covers its own key only.
    const sidecarWithVideoToken = new URL(sidecar.url);
    sidecarWithVideoToken.search = url.search;
    expect((await fetch(sidecarWithVideoToken)).status).toBe(401);
    expect((await fetch(sidecar.url)).status).toBe(200);
  });

  it("asks B2 for links that live B2_DOWNLOAD_URL_TTL_SEC and then stop working", async () => {
    const stored = await storage({ downloadUrlTtlSec: 1 }).putFile({ filePath: small, key, contentType: "video/mp4", signal: signal() });
    await expect.poll(async () => (await fetch(stored.url)).status, { timeout: 10_000, interval: 200 }).toBe(401);
    expect(((await (await fetch(stored.url)).json()) as { code: string }).code).toBe("expired_auth_token");
  });

  it("refuses a private bucket at start when the key lacks shareFiles, before any upload", async () => {
    await restartB2({ capabilities: ["listBuckets", "listFiles", "readFiles", "writeFiles"] });
    await expect(storage().check(signal())).rejects.toThrow(/B2 not usable: configuration: .*allPrivate.*shareFiles/);
    expect(b2.requestCount("get_upload_url")).toBe(0);
  });

  it("fails the start-up check with the reason when the key cannot write, is for another bucket, or another name prefix", async () => {
    await restartB2({ capabilities: ["listBuckets", "listFiles", "readFiles", "shareFiles"] });
    await expect(storage().check(signal())).rejects.toThrow(/configuration: .*lacks the writeFiles capability/);
    await expect(storage({ bucketName: "someone-elses-bucket" }).check(signal())).rejects.toThrow(/restricted to bucket fleet-test-bucket, not B2_BUCKET_NAME=someone-elses-bucket/);
    await restartB2({ namePrefix: "elsewhere/" });
    const s = storage();
    await expect(s.check(signal())).rejects.toThrow(/only allows names starting with elsewhere\/, but outputs go to avatar\/outputs\//);
    // A job that reached the upload anyway fails at once, without a retry or any transfer.
    const err = await jobError(s.putFile({ filePath: small, key, contentType: "video/mp4", signal: signal() }));
    expect(err.info).toMatchObject({ stage: "upload", retryable: false });
    expect(err.info.message).toMatch(/configuration/);
    expect(b2.requestCount("upload")).toBe(0);
    await expect(storage({ prefix: "elsewhere/outputs" }).check(signal())).resolves.toBeUndefined();
  });

  it("treats a 401 unauthorized as configuration: no re-authorization, no retry", async () => {
    const s = storage();
    await s.check(signal());
    b2.failNext(1, { status: 401, code: "unauthorized", op: "get_upload_url" });
    const err = await jobError(s.putFile({ filePath: small, key, contentType: "video/mp4", signal: signal() }));
    expect(err.info).toMatchObject({ stage: "upload", retryable: false });
    expect(err.info.details).toMatchObject({ status_code: 401, b2_code: "unauthorized" });
    expect(b2.requestCount("authorize")).toBe(1);
    expect(b2.requestCount("get_upload_url")).toBe(1);
  });

  it("re-authorizes on bad_auth_token (B2 forgot the token) and succeeds", async () => {
    const s = storage();
    await s.check(signal());
    b2.failNext(1, { status: 401, code: "bad_auth_token", op: "get_upload_url" });
    await s.putFile({ filePath: small, key, contentType: "video/mp4", signal: signal() });
    expect(b2.requestCount("authorize")).toBe(2);
    expect(versionsOf(key)).toHaveLength(1);
  });

  it("finds the file after a finish whose reply was lost, keeps it, and never cancels it", async () => {
    b2.failNext(1, { op: "finish_large_file", dropReply: true });
    const stored = await storage().putFile({ filePath: large, key, contentType: "video/mp4", signal: signal() });
    expect(stored.sha1).toBe(await sha1(large));
    expect(b2.requestCount("finish_large_file")).toBe(1);
    expect(b2.requestCount("get_file_info")).toBe(1);
    expect(b2.requestCount("cancel_large_file")).toBe(0);
    expect(versionsOf(key)).toHaveLength(1);
    expect(b2.unfinishedLargeFiles()).toEqual([]);
    expect(logs.messages("b2_large_file_found_after_lost_reply")).toHaveLength(1);
  });

  it("finds a small upload whose reply was lost instead of storing a second version", async () => {
    b2.failNext(1, { op: "upload", dropReply: true });
    const stored = await storage().putFile({ filePath: small, key, contentType: "video/mp4", signal: signal() });
    expect(stored.sha1).toBe(await sha1(small));
    expect(b2.requestCount("upload")).toBe(1);
    expect(versionsOf(key)).toHaveLength(1);
  });

  it("stores a whole-file SHA-1 as large_file_sha1 so a download of a large output can be checked", async () => {
    const stored = await storage().putFile({ filePath: large, key, contentType: "video/mp4", signal: signal() });
    expect(stored.sha1).toBe(await sha1(large));
    expect(versionsOf(key)).toEqual([expect.objectContaining({ contentSha1: await sha1(large), fileInfo: { large_file_sha1: await sha1(large) } })]);
  });

  it("cancels unfinished large files under B2_PREFIX older than the limit at start, and only those", async () => {
    const B2 = createRequire(import.meta.url)("backblaze-b2") as new (o: object) => {
      authorize(a: object): Promise<{ data: { allowed: { bucketId: string } } }>;
      startLargeFile(a: object): Promise<{ data: { fileId: string } }>;
    };
    const client = new B2({ applicationKeyId: b2.keyId, applicationKey: b2.appKey, retry: { retries: 0 } });
    const bucketId = (await client.authorize({ axiosOverride: { url: b2.authorizeUrl } })).data.allowed.bucketId;
    await client.startLargeFile({ bucketId, fileName: "avatar/outputs/crashed.mp4" });
    await client.startLargeFile({ bucketId, fileName: "someone-else/theirs.mp4" });
    b2.backdateUnfinishedLargeFiles(25 * 3600_000);
    await client.startLargeFile({ bucketId, fileName: "avatar/outputs/in-flight.mp4" });
    await storage({ cancelUnfinishedAfterMs: 24 * 3600_000 }).check(signal());
    expect(b2.unfinishedLargeFiles().map((f) => f.fileName).sort()).toEqual(["avatar/outputs/in-flight.mp4", "someone-else/theirs.mp4"]);
    expect(logs.messages("b2_stale_large_files_checked")).toEqual([expect.objectContaining({ cancelled: 1, kept: 1 })]);
  });

  it("waits as long as B2's Retry-After says before the next attempt", async () => {
    b2.failNext(1, { status: 429, retryAfterSec: 2, op: "get_upload_url" });
    await storage({}, 1).putFile({ filePath: small, key, contentType: "video/mp4", signal: signal() });
    const calls = b2.requests.filter((r) => r.op === "get_upload_url");
    expect(calls.map((r) => r.status)).toEqual([429, 200]);
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(2000);
  });

  it("names Fleet and its version in the User-Agent of every B2 call", async () => {
    await storage().putFile({ filePath: large, key, contentType: "video/mp4", signal: signal() });
    expect(b2.requests.length).toBeGreaterThan(5);
    for (const r of b2.requests) expect(r.userAgent).toMatch(/^fleet-worker\/9\.9\.9-test backblaze-b2\/1\.7\.1 node\//);
  });

  it("never shares an upload URL between concurrent uploads, and takes a new one after auth_token_limit", async () => {
    const s = storage();
    b2.failNext(1, { status: 400, code: "auth_token_limit", op: "upload" });
    const names = ["a", "b", "c", "d"].map((n) => `avatar/outputs/${n}.mp4`);
    await Promise.all(names.map((k) => s.putFile({ filePath: small, key: k, contentType: "video/mp4", signal: signal() })));
    expect(b2.requests.filter((r) => r.op === "upload" && r.status === 400)).toHaveLength(1);
    expect(b2.requestCount("get_upload_url")).toBe(5);
    for (const k of names) expect(versionsOf(k)).toHaveLength(1);
  });

  it("grows the part size so no file needs more than 10,000 parts, and refuses what 5 GB parts cannot hold", () => {
    expect(partSizeFor(3.5 * MiB, MiB)).toBe(MiB);
    expect(partSizeFor(20_000 * MiB, MiB)).toBe(2 * MiB);
    expect(partSizeFor(10_000 * MAX_PART_BYTES, 100 * MiB)).toBe(MAX_PART_BYTES);
    expect(partSizeFor(10_000 * MAX_PART_BYTES + 1, 100 * MiB)).toBeNull();
  });

  it("writes the metadata JSON beside the video", async () => {
    const s = storage();
    await s.putJson({ key: key.replace(/\.mp4$/, ".json"), value: { musetalk_job_id: jobId }, signal: signal() });
    expect(JSON.parse((await b2.readObject(`avatar/outputs/${jobId}.json`)).toString())).toEqual({ musetalk_job_id: jobId });
  });

  it("uploads a large file in parts, each with its SHA-1, and leaves no unfinished large file", async () => {
    await storage().putFile({ filePath: large, key, contentType: "video/mp4", signal: signal() });
    expect(b2.requestCount("upload_part")).toBe(4);
    expect(b2.requestCount("upload")).toBe(0);
    expect(createHash("sha1").update(await b2.readObject(key)).digest("hex")).toBe(await sha1(large));
    expect(b2.unfinishedLargeFiles()).toEqual([]);
  });

  it("authorizes once and reuses the authorization for later uploads", async () => {
    const s = storage();
    await s.putFile({ filePath: small, key: "avatar/outputs/a.mp4", contentType: "video/mp4", signal: signal() });
    await s.putFile({ filePath: small, key: "avatar/outputs/b.mp4", contentType: "video/mp4", signal: signal() });
    expect(b2.requestCount("authorize")).toBe(1);
  });

  it("succeeds through expired tokens: it re-authorizes and takes a fresh upload URL", async () => {
    const s = storage();
    await s.putFile({ filePath: small, key: "avatar/outputs/a.mp4", contentType: "video/mp4", signal: signal() });
    b2.expireTokens();
    await s.putFile({ filePath: large, key, contentType: "video/mp4", signal: signal() });
    expect(b2.requestCount("authorize")).toBe(2);
    expect(createHash("sha1").update(await b2.readObject(key)).digest("hex")).toBe(await sha1(large));
    expect(versionsOf(key)).toHaveLength(1);
  });

  it("succeeds through expired upload-part tokens in the middle of a large file", async () => {
    b2.failNext(2, { status: 401, op: "upload_part" });
    await storage().putFile({ filePath: large, key, contentType: "video/mp4", signal: signal() });
    expect(b2.requestCount("upload_part")).toBe(6);
    expect(b2.requestCount("get_upload_part_url")).toBeGreaterThanOrEqual(3);
    expect(createHash("sha1").update(await b2.readObject(key)).digest("hex")).toBe(await sha1(large));
  });

  it("succeeds through 503s, retrying on a fresh upload URL", async () => {
    b2.failNext(2, { status: 503, op: "upload" });
    b2.failNext(1, { status: 503, op: "get_upload_url" });
    await storage().putFile({ filePath: small, key, contentType: "video/mp4", signal: signal() });
    expect(b2.requestCount("upload")).toBe(3);
    expect((await b2.readObject(key)).equals(await readFile(small))).toBe(true);
    expect(versionsOf(key)).toHaveLength(1);
  });

  it("succeeds through a connection reset halfway through a part", async () => {
    b2.failNext(1, { reset: true, afterBytes: 200_000, op: "upload_part" });
    await storage().putFile({ filePath: large, key, contentType: "video/mp4", signal: signal() });
    expect(createHash("sha1").update(await b2.readObject(key)).digest("hex")).toBe(await sha1(large));
  });

  it("gives up on a B2 that keeps failing as a retryable upload error, and cancels the large file", async () => {
    b2.failFor(120_000, { status: 503, op: "upload_part" });
    const err = await jobError(storage().putFile({ filePath: large, key, contentType: "video/mp4", signal: signal() }));
    expect(err.info).toMatchObject({ error_type: "processing_error", stage: "upload", retryable: true });
    b2.clearFaults();
    await expect.poll(() => b2.unfinishedLargeFiles(), { timeout: 20_000 }).toEqual([]);
  });

  it("a body corrupted in transit is caught by the SHA-1 check and sent again intact", async () => {
    proxy = await startB2TamperProxy(b2.url);
    proxy.corruptUploads(1);
    await storage().putFile({ filePath: small, key, contentType: "video/mp4", signal: signal() });
    const rejected = b2.requests.filter((r) => r.op === "upload" && r.status === 400);
    expect(rejected).toHaveLength(1);
    expect((await b2.readObject(key)).equals(await readFile(small))).toBe(true);
    expect(versionsOf(key)).toHaveLength(1);
  });

  it("a corrupted part of a large file is caught and re-sent", async () => {
    proxy = await startB2TamperProxy(b2.url);
    proxy.corruptUploads(1);
    await storage().putFile({ filePath: large, key, contentType: "video/mp4", signal: signal() });
    expect(b2.requests.filter((r) => r.op === "upload_part" && r.status === 400)).toHaveLength(1);
    expect(createHash("sha1").update(await b2.readObject(key)).digest("hex")).toBe(await sha1(large));
  });

  it("refuses a B2 reply whose SHA-1 is not the one it sent", async () => {
    proxy = await startB2TamperProxy(b2.url);
    proxy.lieAboutSha1(100);
    const err = await jobError(storage().putFile({ filePath: small, key, contentType: "video/mp4", signal: signal() }));
    expect(err.info).toMatchObject({ stage: "upload", retryable: true });
    expect(err.info.details).toMatchObject({ b2_code: "sha1_mismatch" });
  });

  it("reports bad credentials as not ready, and as a non-retryable upload error", async () => {
    const s = storage({ appKey: "wrong" });
    await expect(s.check(signal())).rejects.toThrow(/B2 not usable/);
    const err = await jobError(s.putFile({ filePath: small, key, contentType: "video/mp4", signal: signal() }));
    expect(err.info.retryable).toBe(false);
  });

  it("refuses an empty output without retrying", async () => {
    const empty = path.join(dir, "empty.mp4");
    await writeFile(empty, "");
    const err = await jobError(storage().putFile({ filePath: empty, key, contentType: "video/mp4", signal: signal() }));
    expect(err.info).toMatchObject({ stage: "upload", retryable: false, message: "Output file is empty (0 bytes)" });
  });

  it("stops when the job is aborted and cancels the large file", async () => {
    b2.failFor(120_000, { status: 503, op: "upload_part" });
    const controller = new AbortController();
    const run = storage().putFile({ filePath: large, key, contentType: "video/mp4", signal: controller.signal });
    await expect.poll(() => b2.requestCount("upload_part"), { timeout: 20_000 }).toBeGreaterThan(0);
    controller.abort("cancelled");
    const err = await run.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobAbortedError);
    b2.clearFaults();
    await expect.poll(() => b2.unfinishedLargeFiles(), { timeout: 20_000 }).toEqual([]);
  });
});
