import { createHash, randomBytes } from "node:crypto";
import { request } from "node:http";
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
  getBucket(args: { bucketName: string }): Promise<B2Response<{ buckets: { bucketId: string; bucketName: string; bucketType: string }[] }>>;
  getFileInfo(args: { fileId: string }): Promise<B2Response<{ fileId: string; fileName: string; contentLength: number }>>;
  getDownloadAuthorization(args: { bucketId: string; fileNamePrefix: string; validDurationInSeconds: number }): Promise<B2Response<{ authorizationToken: string }>>;
  listFileVersions(args: { bucketId: string; prefix?: string }): Promise<B2Response<{ files: { fileName: string; fileId: string; uploadTimestamp: number }[] }>>;
  deleteFileVersion(args: { fileId: string; fileName: string }): Promise<B2Response<{ fileId: string }>>;
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

async function accountToken(s: B2TestServer): Promise<string> {
  const res = await fetch(s.authorizeUrl, { headers: { Authorization: `Basic ${Buffer.from(`${s.keyId}:${s.appKey}`).toString("base64")}` } });
  return ((await res.json()) as { authorizationToken: string }).authorizationToken;
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
    const grant = await client.getDownloadAuthorization({ bucketId, fileNamePrefix: "avatar/outputs/", validDurationInSeconds: 60 });
    const auth = `?Authorization=${encodeURIComponent(grant.data.authorizationToken)}`;
    const dl = await fetch(`${b2s.url}/file/${b2s.bucketName}/avatar/outputs/${encodeURIComponent("job 1ü.mp4")}${auth}`);
    expect(dl.status).toBe(200);
    expect(dl.headers.get("x-bz-content-sha1")).toBe(sha1(data));
    expect(Buffer.from(await dl.arrayBuffer()).equals(data)).toBe(true);
    const missing = await fetch(`${b2s.url}/file/${b2s.bucketName}/avatar/outputs/none.mp4${auth}`);
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
    expect(err.response?.data.message).toBe("Checksum did not match data received");
    expect(b2s.listObjects()).toEqual([]);
  });

  it("accepts only the documented SHA-1 declarations: hex, do_not_verify and hex_digits_at_end", async () => {
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
    expect((await post("undocumented.bin", data, `unverified:${sha1(data)}`)).status).toBe(400);
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
    const priv = await startB2TestServer();
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

  it("serves a public bucket's files by name without a token", async () => {
    const pub = await startB2TestServer({ bucketType: "allPublic" });
    try {
      client = await connect(pub);
      const data = randomBytes(500);
      await upload("public/a.bin", data);
      const res = await fetch(`${pub.url}/file/${pub.bucketName}/public/a.bin`);
      expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
      expect((await client.getBucket({ bucketName: pub.bucketName })).data.buckets[0]?.bucketType).toBe("allPublic");
    } finally {
      await pub.close();
    }
  });

  it("is private by default, and a download authorization opens only its prefix and only for its lifetime", async () => {
    expect((await client.getBucket({ bucketName: b2s.bucketName })).data.buckets[0]?.bucketType).toBe("allPrivate");
    await upload("out/a.mp4", randomBytes(100));
    await upload("other/b.mp4", randomBytes(100));
    const grant = async (validDurationInSeconds: number) =>
      (await client.getDownloadAuthorization({ bucketId, fileNamePrefix: "out/a.mp4", validDurationInSeconds })).data.authorizationToken;
    const get = (name: string, token: string) => fetch(`${b2s.url}/file/${b2s.bucketName}/${name}?Authorization=${encodeURIComponent(token)}`);
    const hour = await grant(3600);
    expect((await fetch(`${b2s.url}/file/${b2s.bucketName}/out/a.mp4`)).status).toBe(401);
    expect((await get("out/a.mp4", hour)).status).toBe(200);
    // The account token that asked for it expiring does not end a link already handed out.
    b2s.expireTokens();
    expect((await get("out/a.mp4", hour)).status).toBe(200);
    client = await connect(b2s);
    const other = await get("other/b.mp4", hour);
    expect([other.status, ((await other.json()) as { code: string }).code]).toEqual([401, "unauthorized"]);
    const second = await grant(1);
    await expect.poll(async () => (await get("out/a.mp4", second)).status, { timeout: 10_000, interval: 200 }).toBe(401);
    const expired = await get("out/a.mp4", second);
    expect(((await expired.json()) as { code: string }).code).toBe("expired_auth_token");
    for (const validDurationInSeconds of [0, 604_801]) {
      const bad = await failure(client.getDownloadAuthorization({ bucketId, fileNamePrefix: "out/", validDurationInSeconds }));
      expect([bad.response?.status, bad.response?.data.code]).toEqual([400, "bad_request"]);
    }
  });

  it("answers 401 unauthorized to a key without the capability a call needs", async () => {
    const readOnly = await startB2TestServer({ capabilities: ["listBuckets", "listFiles", "readFiles"] });
    try {
      client = await connect(readOnly);
      const calls = [
        () => client.getUploadUrl({ bucketId }),
        () => client.startLargeFile({ bucketId, fileName: "a.mp4" }),
        () => client.getDownloadAuthorization({ bucketId, fileNamePrefix: "a", validDurationInSeconds: 60 }),
      ];
      for (const call of calls) {
        const err = await failure(call());
        expect([err.response?.status, err.response?.data.code]).toEqual([401, "unauthorized"]);
      }
      expect((await client.listFileNames({ bucketId })).data.files).toEqual([]);
    } finally {
      await readOnly.close();
    }
  });

  it("answers 401 unauthorized to names and listings outside the key's name prefix", async () => {
    const prefixed = await startB2TestServer({ namePrefix: "avatar/" });
    try {
      const auth = await new B2({ applicationKeyId: prefixed.keyId, applicationKey: prefixed.appKey, retry: { retries: 0 } }).authorize({ axiosOverride: { url: prefixed.authorizeUrl } });
      expect(auth.data.allowed).toMatchObject({ namePrefix: "avatar/" });
      client = await connect(prefixed);
      await upload("avatar/outputs/a.mp4", randomBytes(100));
      const calls = [
        () => upload("elsewhere/a.mp4", randomBytes(100)),
        () => client.startLargeFile({ bucketId, fileName: "elsewhere/b.mp4" }),
        () => client.listFileNames({ bucketId, prefix: "" }),
      ];
      for (const call of calls) {
        const err = await failure(call());
        expect([err.response?.status, err.response?.data.code]).toEqual([401, "unauthorized"]);
      }
      expect((await client.listFileNames({ bucketId, prefix: "avatar/outputs/" })).data.files.map((f) => f.fileName)).toEqual(["avatar/outputs/a.mp4"]);
    } finally {
      await prefixed.close();
    }
  });

  it("keeps every upload of a name as a version and serves the newest by name", async () => {
    const first = randomBytes(100);
    const second = randomBytes(200);
    await upload("v/a.mp4", first);
    const newer = await upload("v/a.mp4", second);
    expect(b2s.listObjects().map((o) => [o.fileName, o.size])).toEqual([["v/a.mp4", 200]]);
    expect(b2s.listFileVersions().map((o) => [o.fileName, o.size])).toEqual([["v/a.mp4", 100], ["v/a.mp4", 200]]);
    const listed = await client.listFileVersions({ bucketId, prefix: "v/" });
    expect(listed.data.files.map((f) => f.fileId)[0]).toBe(newer.data.fileId);
    expect(listed.data.files).toHaveLength(2);
    expect((await b2s.readObject("v/a.mp4")).equals(second)).toBe(true);
    await client.deleteFileVersion({ fileId: newer.data.fileId, fileName: "v/a.mp4" });
    expect((await b2s.readObject("v/a.mp4")).equals(first)).toBe(true);
    expect(b2s.listFileVersions()).toHaveLength(1);
  });

  it("can finish a large file and drop the reply: a retried finish is a 400 and b2_get_file_info finds the file", async () => {
    const parts = [randomBytes(1 << 20), randomBytes(1000)];
    const start = await client.startLargeFile({ bucketId, fileName: "lost/reply.mp4" });
    const fileId = start.data.fileId;
    const pu = await client.getUploadPartUrl({ fileId });
    for (const [i, data] of parts.entries()) {
      await client.uploadPart({ uploadUrl: pu.data.uploadUrl, uploadAuthToken: pu.data.authorizationToken, partNumber: i + 1, data });
    }
    const notYet = await failure(client.getFileInfo({ fileId }));
    expect([notYet.response?.status, notYet.response?.data.code]).toEqual([404, "not_found"]);
    b2s.failNext(1, { op: "finish_large_file", dropReply: true });
    const lost = await failure(client.finishLargeFile({ fileId, partSha1Array: parts.map(sha1) }));
    expect(lost.response).toBeUndefined();
    expect(b2s.unfinishedLargeFiles()).toEqual([]);
    const again = await failure(client.finishLargeFile({ fileId, partSha1Array: parts.map(sha1) }));
    expect([again.response?.status, again.response?.data.code]).toEqual([400, "bad_request"]);
    expect((await client.getFileInfo({ fileId })).data).toMatchObject({ fileId, fileName: "lost/reply.mp4", contentLength: (1 << 20) + 1000 });
  });

  it("answers auth_token_limit to a second upload on an upload URL whose first upload is still in flight", async () => {
    const u = await client.getUploadUrl({ bucketId });
    const target = new URL(u.data.uploadUrl);
    const data = randomBytes(200_000);
    const headers = {
      Authorization: u.data.authorizationToken, "X-Bz-File-Name": "first.bin", "Content-Type": "b2/x-auto",
      "X-Bz-Content-Sha1": sha1(data), "Content-Length": data.length,
    };
    let secondRefused = (): void => undefined;
    const secondDone = new Promise<void>((resolve) => (secondRefused = resolve));
    const firstReply = new Promise<number>((resolve, reject) => {
      const req = request(target, { method: "POST", headers }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.write(data.subarray(0, 1000));
      // The rest goes once the second upload has been refused, so the two overlap for sure.
      void secondDone.then(() => req.end(data.subarray(1000)));
    });
    await expect.poll(() => b2s.requests.filter((r) => r.op === "upload").length, { timeout: 10_000 }).toBe(1);
    const second = failure(client.uploadFile({ uploadUrl: u.data.uploadUrl, uploadAuthToken: u.data.authorizationToken, fileName: "second.bin", data: randomBytes(100) }));
    const err = await second;
    secondRefused();
    expect([err.response?.status, err.response?.data.code, err.response?.data.message]).toEqual([400, "auth_token_limit", `more than one upload using auth token ${u.data.authorizationToken}`]);
    expect(await firstReply).toBe(200);
    expect(b2s.listObjects().map((o) => o.fileName)).toEqual(["first.bin"]);
  });

  it("lists unfinished large files under a name prefix, oldest first", async () => {
    const a = await client.startLargeFile({ bucketId, fileName: "p/a.mp4" });
    const b = await client.startLargeFile({ bucketId, fileName: "p/b.mp4" });
    await client.startLargeFile({ bucketId, fileName: "q/c.mp4" });
    const res = await fetch(`${b2s.url}/b2api/v2/b2_list_unfinished_large_files`, {
      method: "POST",
      headers: { Authorization: await accountToken(b2s) },
      body: JSON.stringify({ bucketId, namePrefix: "p/" }),
    });
    const body = (await res.json()) as { files: { fileId: string; action: string }[]; nextFileId: string | null };
    expect(body.files.map((f) => [f.fileId, f.action])).toEqual([[a.data.fileId, "start"], [b.data.fileId, "start"]]);
    expect(body.nextFileId).toBeNull();
  });

  it("injects a chosen error code and Retry-After, and records each request's User-Agent", async () => {
    b2s.failNext(1, { status: 401, code: "unauthorized", op: "get_upload_url" });
    const err = await failure(client.getUploadUrl({ bucketId }));
    expect([err.response?.status, err.response?.data.code]).toEqual([401, "unauthorized"]);
    b2s.failNext(1, { status: 429, retryAfterSec: 7, op: "get_upload_url" });
    const res = await fetch(`${b2s.url}/b2api/v2/b2_get_upload_url`, { method: "POST", headers: { Authorization: await accountToken(b2s), "User-Agent": "fleet-test/1" }, body: "{}" });
    expect([res.status, res.headers.get("retry-after")]).toEqual([429, "7"]);
    expect(b2s.requests.at(-1)?.userAgent).toBe("fleet-test/1");
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
