import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startB2TestServer, type B2TestServer } from "@fleet/testing/b2-test-server";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { B2Settings } from "../config.js";
import { JobAbortedError, JobError } from "../pipeline/job-error.js";
import { startB2TamperProxy, type B2TamperProxy } from "../test-support/b2-tamper-proxy.js";
import { captureLogger } from "../test-support/capture-logger.js";
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
beforeEach(async () => {
  b2 = await startB2TestServer({ absoluteMinimumPartSize: MiB, recommendedPartSize: MiB });
});
afterEach(async () => {
  await proxy?.close();
  proxy = null;
  await b2.close();
});

function storage(overrides: Partial<B2Settings> = {}): OutputStorage {
  return createB2Storage({
    log: captureLogger().log,
    retryBaseMs: 100,
    settings: {
      keyId: b2.keyId,
      appKey: b2.appKey,
      bucketName: b2.bucketName,
      prefix: "avatar/outputs",
      authorizeUrl: proxy?.authorizeUrl ?? b2.authorizeUrl,
      partSizeBytes: MiB,
      largeFileThresholdBytes: 2 * MiB,
      ...overrides,
    },
  });
}

const signal = () => new AbortController().signal;
const sha1 = async (file: string) => createHash("sha1").update(await readFile(file)).digest("hex");

async function jobError(p: Promise<unknown>): Promise<JobError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(JobError);
  return err as JobError;
}

describe("B2 storage", () => {
  it("uploads to {B2_PREFIX}/{job id}.mp4 and returns a URL from the account's downloadUrl", async () => {
    const stored = await storage().putFile({ filePath: small, key, contentType: "video/mp4", signal: signal() });
    expect(key).toBe(`avatar/outputs/${jobId}.mp4`);
    expect(stored.url).toBe(`${b2.url}/file/${b2.bucketName}/avatar/outputs/${jobId}.mp4`);
    expect(stored.sha1).toBe(await sha1(small));
    expect((await b2.readObject(key)).equals(await readFile(small))).toBe(true);
    const res = await fetch(stored.url);
    expect(Buffer.from(await res.arrayBuffer()).equals(await readFile(small))).toBe(true);
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
