import { createHash, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startB2TestServer } from "./b2-test-server.js";
import type { B2TestServer } from "./b2-test-server.js";

/** The slice of backblaze-b2@1.7.1 these tests drive (the package ships no types). */
interface B2Response<T> {
  data: T;
}
interface B2Client {
  authorize(args?: { axiosOverride?: { url: string } }): Promise<B2Response<{ allowed: { bucketId: string }; downloadUrl: string }>>;
  getUploadUrl(args: { bucketId: string }): Promise<B2Response<{ uploadUrl: string; authorizationToken: string }>>;
  uploadFile(args: { uploadUrl: string; uploadAuthToken: string; fileName: string; data: Buffer; hash?: string; info?: Record<string, string>; mime?: string }): Promise<B2Response<{ fileId: string; contentSha1: string; contentLength: number; fileName: string }>>;
  startLargeFile(args: { bucketId: string; fileName: string }): Promise<B2Response<{ fileId: string }>>;
  getUploadPartUrl(args: { fileId: string }): Promise<B2Response<{ uploadUrl: string; authorizationToken: string }>>;
  uploadPart(args: { uploadUrl: string; uploadAuthToken: string; partNumber: number; data: Buffer }): Promise<B2Response<{ contentSha1: string }>>;
  finishLargeFile(args: { fileId: string; partSha1Array: string[] }): Promise<B2Response<{ contentLength: number; fileName: string }>>;
  cancelLargeFile(args: { fileId: string }): Promise<B2Response<{ fileId: string }>>;
  listFileNames(args: { bucketId: string; prefix?: string; maxFileCount?: number; delimiter?: string }): Promise<B2Response<{ files: { fileName: string; action: string }[]; nextFileName: string | null }>>;
  getBucket(args: { bucketName: string }): Promise<B2Response<{ buckets: { bucketId: string; bucketName: string }[] }>>;
}
type B2Ctor = new (opts: { applicationKeyId: string; applicationKey: string; axios?: object; retry?: object }) => B2Client;
const B2 = createRequire(import.meta.url)("backblaze-b2") as B2Ctor;

interface AxiosLikeError {
  response?: { status: number; data: { status: number; code: string; message: string } };
  code?: string;
}
async function failure(p: Promise<unknown>): Promise<AxiosLikeError> {
  try {
    await p;
  } catch (err) {
    return err as AxiosLikeError;
  }
  throw new Error("expected the call to fail");
}

const sha1 = (b: Buffer): string => createHash("sha1").update(b).digest("hex");

let b2s: B2TestServer;
let client: B2Client;
let bucketId: string;

async function connect(s: B2TestServer): Promise<B2Client> {
  const c = new B2({
    applicationKeyId: s.keyId,
    applicationKey: s.appKey,
    axios: { maxBodyLength: Infinity, maxContentLength: Infinity },
    retry: { retries: 0 },
  });
  const auth = await c.authorize({ axiosOverride: { url: s.authorizeUrl } });
  bucketId = auth.data.allowed.bucketId;
  return c;
}

async function upload(name: string, data: Buffer, hash?: string) {
  const u = await client.getUploadUrl({ bucketId });
  return client.uploadFile({ uploadUrl: u.data.uploadUrl, uploadAuthToken: u.data.authorizationToken, fileName: name, data, hash });
}

beforeEach(async () => {
  b2s = await startB2TestServer({ absoluteMinimumPartSize: 1 << 20, recommendedPartSize: 1 << 20 });
  client = await connect(b2s);
});
afterEach(async () => {
  await b2s.close();
});

describe("B2 test server through backblaze-b2", () => {
  it("authorizes with the configured key, names the bucket and points every URL at itself", async () => {
    expect(bucketId).toBe(b2s.bucketId);
    const bucket = await client.getBucket({ bucketName: b2s.bucketName });
    expect(bucket.data.buckets).toEqual([expect.objectContaining({ bucketId: b2s.bucketId, bucketName: b2s.bucketName })]);
    const wrong = new B2({ applicationKeyId: b2s.keyId, applicationKey: "nope", retry: { retries: 0 } });
    const err = await failure(wrong.authorize({ axiosOverride: { url: b2s.authorizeUrl } }));
    expect(err.response?.status).toBe(401);
    expect(err.response?.data.code).toBe("unauthorized");
  });

  it("stores a small upload on disk with its SHA-1, file info and a download-by-name URL", async () => {
    const data = randomBytes(70_000);
    const u = await client.getUploadUrl({ bucketId });
    const res = await client.uploadFile({
      uploadUrl: u.data.uploadUrl, uploadAuthToken: u.data.authorizationToken,
      fileName: "avatar/outputs/job 1ü.mp4", data, info: { musetalk_job_id: "job 1" },
    });
    expect(res.data.contentSha1).toBe(sha1(data));
    expect(res.data.contentLength).toBe(data.length);
    expect(b2s.listObjects()).toEqual([
      expect.objectContaining({ fileName: "avatar/outputs/job 1ü.mp4", size: data.length, sha1: sha1(data), contentType: "video/mp4", fileInfo: { musetalk_job_id: "job 1" } }),
    ]);
    expect((await b2s.readObject("avatar/outputs/job 1ü.mp4")).equals(data)).toBe(true);
    const dl = await fetch(`${b2s.url}/file/${b2s.bucketName}/avatar/outputs/${encodeURIComponent("job 1ü.mp4")}`);
    expect(dl.status).toBe(200);
    expect(dl.headers.get("x-bz-content-sha1")).toBe(sha1(data));
    expect(Buffer.from(await dl.arrayBuffer()).equals(data)).toBe(true);
    const missing = await fetch(`${b2s.url}/file/${b2s.bucketName}/avatar/outputs/none.mp4`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { code: string }).code).toBe("not_found");
    const listed = await client.listFileNames({ bucketId, prefix: "avatar/", delimiter: "/" });
    expect(listed.data.files).toEqual([expect.objectContaining({ fileName: "avatar/outputs/", action: "folder" })]);
  });

  it("assembles a large file from parts and checks partSha1Array and the minimum part size", async () => {
    const parts = [randomBytes(1 << 20), randomBytes(1 << 20), randomBytes(300_000)];
    const start = await client.startLargeFile({ bucketId, fileName: "big/out.mp4" });
    const fileId = start.data.fileId;
    expect(b2s.unfinishedLargeFiles()).toEqual([{ fileId, fileName: "big/out.mp4", parts: 0 }]);
    const pu = await client.getUploadPartUrl({ fileId });
    for (const [i, data] of parts.entries()) {
      await client.uploadPart({ uploadUrl: pu.data.uploadUrl, uploadAuthToken: pu.data.authorizationToken, partNumber: i + 1, data });
    }
    const badList = parts.map(sha1).reverse();
    const bad = await failure(client.finishLargeFile({ fileId, partSha1Array: badList }));
    expect(bad.response?.status).toBe(400);
    expect(bad.response?.data.code).toBe("bad_request");
    const done = await client.finishLargeFile({ fileId, partSha1Array: parts.map(sha1) });
    const whole = Buffer.concat(parts);
    expect(done.data.contentLength).toBe(whole.length);
    expect(b2s.listObjects()[0]).toMatchObject({ fileName: "big/out.mp4", size: whole.length, sha1: sha1(whole), contentSha1: "none" });
    expect((await b2s.readObject("big/out.mp4")).equals(whole)).toBe(true);
    expect(b2s.unfinishedLargeFiles()).toEqual([]);

    const small = await client.startLargeFile({ bucketId, fileName: "big/small-parts.mp4" });
    const spu = await client.getUploadPartUrl({ fileId: small.data.fileId });
    const tiny = [randomBytes(1000), randomBytes(1000)];
    for (const [i, data] of tiny.entries()) {
      await client.uploadPart({ uploadUrl: spu.data.uploadUrl, uploadAuthToken: spu.data.authorizationToken, partNumber: i + 1, data });
    }
    const tooSmall = await failure(client.finishLargeFile({ fileId: small.data.fileId, partSha1Array: tiny.map(sha1) }));
    expect(tooSmall.response?.data.message).toMatch(/smaller than minimum part size/);
    await client.cancelLargeFile({ fileId: small.data.fileId });
    expect(b2s.unfinishedLargeFiles()).toEqual([]);
  });

  it("answers 401 expired_auth_token to old account and upload tokens until the client re-authorizes", async () => {
    const u = await client.getUploadUrl({ bucketId });
    b2s.expireTokens();
    const onApi = await failure(client.getUploadUrl({ bucketId }));
    expect(onApi.response?.status).toBe(401);
    expect(onApi.response?.data.code).toBe("expired_auth_token");
    const data = randomBytes(5000);
    const onUpload = await failure(client.uploadFile({ uploadUrl: u.data.uploadUrl, uploadAuthToken: u.data.authorizationToken, fileName: "a.bin", data }));
    expect(onUpload.response?.status).toBe(401);
    expect(onUpload.response?.data.code).toBe("expired_auth_token");
    client = await connect(b2s);
    await upload("a.bin", data);
    expect(b2s.listObjects().map((o) => o.fileName)).toEqual(["a.bin"]);
    expect(b2s.requestCount("authorize")).toBe(2);
  });

  it("fails the next matching requests with an injected 503, then serves normally", async () => {
    b2s.failNext(2, { status: 503, op: "upload" });
    const data = randomBytes(2000);
    const u = await client.getUploadUrl({ bucketId });
    const args = { uploadUrl: u.data.uploadUrl, uploadAuthToken: u.data.authorizationToken, fileName: "x.bin", data };
    for (let i = 0; i < 2; i += 1) {
      const err = await failure(client.uploadFile(args));
      expect(err.response?.status).toBe(503);
      expect(err.response?.data.code).toBe("service_unavailable");
    }
    await client.uploadFile(args);
    expect(b2s.requestCount("upload")).toBe(3);
    expect(b2s.requests.filter((r) => r.op === "upload").map((r) => [r.status, r.injected])).toEqual([[503, true], [503, true], [200, false]]);

    b2s.failFor(60_000, { status: 429, op: ["get_upload_url", "get_upload_part_url"] });
    const limited = await failure(client.getUploadUrl({ bucketId }));
    expect(limited.response?.status).toBe(429);
    expect(limited.response?.data.code).toBe("too_many_requests");
    b2s.clearFaults();
    await client.getUploadUrl({ bucketId });
  });

  it("refuses an upload whose SHA-1 does not match with 400 bad_request and stores nothing", async () => {
    const data = randomBytes(10_000);
    const err = await failure(upload("bad.bin", data, sha1(Buffer.from("something else"))));
    expect(err.response?.status).toBe(400);
    expect(err.response?.data.code).toBe("bad_request");
    expect(err.response?.data.message).toMatch(/Sha1 did not match/);
    expect(b2s.listObjects()).toEqual([]);
  });

  it("accepts do_not_verify and hex_digits_at_end SHA-1 declarations as B2 does", async () => {
    const u = await client.getUploadUrl({ bucketId });
    const data = randomBytes(3000);
    const post = (name: string, body: Buffer, sha: string) =>
      fetch(u.data.uploadUrl, {
        method: "POST",
        headers: { Authorization: u.data.authorizationToken, "X-Bz-File-Name": name, "Content-Type": "b2/x-auto", "X-Bz-Content-Sha1": sha },
        body,
      });
    expect((await post("trailer.bin", Buffer.concat([data, Buffer.from(sha1(data))]), "hex_digits_at_end")).status).toBe(200);
    expect((await post("bad-trailer.bin", Buffer.concat([data, Buffer.from(sha1(Buffer.alloc(1)))]), "hex_digits_at_end")).status).toBe(400);
    expect((await post("unverified.bin", data, "do_not_verify")).status).toBe(200);
    const objs = b2s.listObjects();
    expect(objs.map((o) => [o.fileName, o.size, o.sha1])).toEqual([
      ["trailer.bin", data.length, sha1(data)],
      ["unverified.bin", data.length, sha1(data)],
    ]);
    expect(objs[1]?.contentSha1).toBe(`unverified:${sha1(data)}`);
  });

  it("answers a big upload with a bad token with 401 after reading it, not with a broken pipe", async () => {
    const u = await client.getUploadUrl({ bucketId });
    const start = await client.startLargeFile({ bucketId, fileName: "p.bin" });
    const pu = await client.getUploadPartUrl({ fileId: start.data.fileId });
    const big = randomBytes(4 << 20);
    const wrongKind = await failure(client.uploadFile({ uploadUrl: u.data.uploadUrl, uploadAuthToken: pu.data.authorizationToken, fileName: "p.bin", data: big }));
    expect(wrongKind.response?.data.code).toBe("bad_auth_token");
    b2s.expireTokens();
    const expired = await failure(client.uploadPart({ uploadUrl: pu.data.uploadUrl, uploadAuthToken: pu.data.authorizationToken, partNumber: 1, data: big }));
    expect(expired.response?.status).toBe(401);
    expect(expired.response?.data.code).toBe("expired_auth_token");
  });

  it("guards a private bucket's downloads with the account token and serves ranges and ids", async () => {
    const priv = await startB2TestServer({ bucketType: "allPrivate" });
    try {
      client = await connect(priv);
      const data = randomBytes(4000);
      const up = await upload("private/a.bin", data);
      const byName = `${priv.url}/file/${priv.bucketName}/private/a.bin`;
      expect((await fetch(byName)).status).toBe(401);
      const auth = await (await fetch(priv.authorizeUrl, { headers: { Authorization: `Basic ${Buffer.from(`${priv.keyId}:${priv.appKey}`).toString("base64")}` } })).json() as { authorizationToken: string };
      const ranged = await fetch(byName, { headers: { Authorization: auth.authorizationToken, Range: "bytes=10-19" } });
      expect(ranged.status).toBe(206);
      expect(Buffer.from(await ranged.arrayBuffer()).equals(data.subarray(10, 20))).toBe(true);
      const byId = await fetch(`${priv.url}/b2api/v2/b2_download_file_by_id?fileId=${up.data.fileId}&Authorization=${auth.authorizationToken}`);
      expect(Buffer.from(await byId.arrayBuffer()).equals(data)).toBe(true);
    } finally {
      await priv.close();
    }
  });

  it("pages b2_list_file_names with nextFileName", async () => {
    for (const n of ["a/1", "a/2", "a/3"]) await upload(n, randomBytes(100));
    const first = await client.listFileNames({ bucketId, prefix: "a/", maxFileCount: 2 });
    expect(first.data.files.map((f) => f.fileName)).toEqual(["a/1", "a/2"]);
    expect(first.data.nextFileName).toBe("a/3");
  });

  it("can reset the connection in the middle of an upload", async () => {
    b2s.failNext(1, { op: "upload", reset: true, afterBytes: 64 * 1024 });
    const err = await failure(upload("reset.bin", randomBytes(2 << 20)));
    expect(err.response).toBeUndefined();
    expect(b2s.listObjects()).toEqual([]);
    await upload("reset.bin", randomBytes(1000));
    expect(b2s.listObjects()).toHaveLength(1);
  });
});
