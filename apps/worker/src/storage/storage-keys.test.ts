import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startB2TestServer, type B2TestServer } from "@fleet/testing/b2-test-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobError } from "../errors/job-error.js";
import { captureLogger } from "../test-support/capture-logger.js";
import { createB2Storage } from "./b2-storage.js";
import { createLocalStorage } from "./local-storage.js";
import { outputKey, type OutputStorage } from "./output-storage.js";

const jobId = "3f1c2a4e-8b7d-4c3e-9a1f-2b3c4d5e6f70";
const other = "9a1f2b3c-4d5e-4f70-8b7d-3f1c2a4e6f70";

/** Keys a caller-chosen job id could produce if anything upstream forgot to validate it. */
const HOSTILE_KEYS = [
  `avatar/outputs/${jobId}.mp4/../${other}.mp4`,
  "avatar/outputs/../../x.mp4",
  "avatar/outputs/../x.mp4",
  "../avatar/outputs/x.mp4",
  "/etc/x.mp4",
  "avatar/outputs/a\\..\\..\\x.mp4",
  "avatar/outputs/x\u0000.mp4",
  "avatar/outputs/x\n.mp4",
  "avatar/outputs//x.mp4",
  "avatar/outputs/./x.mp4",
  "elsewhere/x.mp4",
  "avatar/outputsx/x.mp4",
  "",
];

let dir: string;
let file: string;
let b2: B2TestServer;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "fleet-keys-"));
  file = path.join(dir, "out.mp4");
  await writeFile(file, randomBytes(2000));
  b2 = await startB2TestServer();
});
afterAll(async () => {
  await b2.close();
  await rm(dir, { recursive: true, force: true });
});

async function refused(store: OutputStorage, key: string): Promise<void> {
  const signal = new AbortController().signal;
  for (const put of [() => store.putFile({ filePath: file, key, contentType: "video/mp4", signal }), () => store.putJson({ key, value: {}, signal })]) {
    const err = await put().then(() => null, (e: unknown) => e);
    expect(err, JSON.stringify(key)).toBeInstanceOf(JobError);
    expect((err as JobError).info).toMatchObject({ stage: "upload", retryable: false });
  }
}

async function listFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(root, path.join(e.parentPath, e.name)));
}

describe("storage keys", () => {
  it("builds output keys only from UUIDs", () => {
    expect(outputKey("avatar/outputs", jobId, ".mp4")).toBe(`avatar/outputs/${jobId}.mp4`);
    for (const id of [`${jobId}.mp4/../${other}`, "../../x", "job-123", ""]) {
      expect(() => outputKey("avatar/outputs", id, ".mp4"), id).toThrow(JobError);
    }
  });

  it("the local store refuses every key outside its prefix and writes nothing", async () => {
    const root = path.join(dir, "local", "outputs");
    const store = createLocalStorage({ dir: root, baseUrl: () => "http://127.0.0.1:8000/outputs" });
    for (const key of HOSTILE_KEYS) await refused(store, key);
    expect(await listFiles(path.join(dir, "local")).catch(() => [])).toEqual([]);
    await store.putJson({ key: `avatar/outputs/${jobId}.json`, value: {}, signal: new AbortController().signal });
    expect(await listFiles(root)).toEqual([`avatar/outputs/${jobId}.json`]);
  });

  it("the B2 store refuses every key outside its prefix before any upload", async () => {
    const store = createB2Storage({
      log: captureLogger().log,
      settings: {
        keyId: b2.keyId,
        appKey: b2.appKey,
        bucketName: b2.bucketName,
        prefix: "avatar/outputs",
        authorizeUrl: b2.authorizeUrl,
        partSizeBytes: 5 * 1024 * 1024,
        largeFileThresholdBytes: 200 * 1024 * 1024,
        downloadUrlTtlSec: 3600,
        cancelUnfinishedAfterMs: null,
      },
    });
    for (const key of HOSTILE_KEYS) await refused(store, key);
    expect(b2.listObjects()).toEqual([]);
    expect(b2.requestCount("upload")).toBe(0);
  });
});
