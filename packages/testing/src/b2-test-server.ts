import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { authorize, handleApiCall, isApiOp } from "./b2-api-handlers.js";
import { ALL_CAPABILITIES, B2_OPS, B2HttpError, TokenRegistry, drain, faultError, header, sendB2Error, sendJson } from "./b2-http.js";
import type { B2Op, B2State } from "./b2-http.js";
import { B2Store } from "./b2-store.js";
import type { B2StoredObject } from "./b2-store.js";
import { handleUpload, handleUploadPart, sendObject } from "./b2-transfer-handlers.js";

export { B2_OPS };
export type { B2Op, B2StoredObject };

export interface B2TestServerOptions {
  keyId?: string;
  appKey?: string;
  bucketName?: string;
  accountId?: string;
  /**
   * allPrivate (default, as B2 creates buckets): downloads need an account token or a download
   * authorization. allPublic: downloads by name need no token.
   */
  bucketType?: "allPublic" | "allPrivate";
  /** Default true: like a production key limited to one bucket, so b2_list_buckets must name it. */
  restrictedToBucket?: boolean;
  /** The key's capabilities (default: a console "Read and Write" key's). Missing ones answer 401 unauthorized. */
  capabilities?: readonly string[];
  /** The key's name prefix (default none): names outside it answer 401 unauthorized. */
  namePrefix?: string | null;
  /** Bytes; B2 says 100 MB. */
  recommendedPartSize?: number;
  /** Bytes; B2 says 5 MB. Tests set it small so a "large file" is a few MiB. */
  absoluteMinimumPartSize?: number;
  /** Parent for the temp dir that holds the stored bytes (default os.tmpdir()). */
  tmpRoot?: string;
}

/** An injected failure: an HTTP status with B2's error body, a connection reset, or a lost reply. */
export interface B2Fault {
  /** 503 (default) → service_unavailable, 500 → internal_error, 429 → too_many_requests, 408, 401 → expired_auth_token. */
  status?: number;
  /** B2's error code instead of the status's usual one (a 401 `unauthorized` or `bad_auth_token`, say). */
  code?: string;
  /** Which operations it hits; every operation when absent. */
  op?: B2Op | readonly B2Op[];
  message?: string;
  /** Retry-After on a 429 or 503, in seconds (default 1). */
  retryAfterSec?: number;
  /** Destroy the socket instead of answering, after reading `afterBytes` of the request body. */
  reset?: boolean;
  afterBytes?: number;
  /** Carry the request out in full, then destroy the socket instead of answering: the reply is lost, the effect is not. */
  dropReply?: boolean;
}

export interface B2RequestRecord {
  op: B2Op | "unknown";
  method: string;
  path: string;
  status: number | null;
  at: number;
  /** True when an injected fault answered it. */
  injected: boolean;
  userAgent: string | null;
}

export interface B2TestServer {
  /** Base URL: API, upload and download host in one. */
  url: string;
  /** What the worker's B2_AUTHORIZE_URL should be. */
  authorizeUrl: string;
  keyId: string;
  appKey: string;
  accountId: string;
  bucketName: string;
  bucketId: string;
  /** Temp dir holding the stored bytes; removed by close(). */
  dir: string;
  /** The worker's B2 settings pointing at this server. */
  env(): Record<string, string>;
  /** Every auth and upload token issued so far answers 401 expired_auth_token from now on. */
  expireTokens(): void;
  /** The next `n` requests matching `fault.op` fail as described. */
  failNext(n: number, fault?: B2Fault): void;
  /** Requests matching `fault.op` fail for the next `ms` milliseconds. */
  failFor(ms: number, fault?: B2Fault): void;
  clearFaults(): void;
  /** Requests seen per operation (faulted ones included). */
  requestCount(op?: B2Op): number;
  readonly requests: readonly B2RequestRecord[];
  /** The latest version of each name, by name. */
  listObjects(): Omit<B2StoredObject, "path">[];
  /** Every version of every name (B2 keeps each upload of a name), by name, oldest first. */
  listFileVersions(): Omit<B2StoredObject, "path">[];
  readObject(name: string): Promise<Buffer>;
  /** Disk path of a stored object, to compare big files without loading them. */
  objectPath(name: string): string | undefined;
  /** Large files started and neither finished nor cancelled. */
  unfinishedLargeFiles(): { fileId: string; fileName: string; parts: number }[];
  /** Makes every unfinished large file look started `ms` earlier, to test clean-ups by age. */
  backdateUnfinishedLargeFiles(ms: number): void;
  close(): Promise<void>;
}

interface FaultRule {
  fault: B2Fault;
  remaining: number;
  until: number;
}

type Route = { op: B2Op; version: number; id?: string } | { op: "unknown" };

function route(method: string, pathname: string): Route {
  if (pathname.startsWith("/file/")) return { op: "download", version: 2 };
  const m = /^\/b2api\/v([123])\/b2_([a-z_]+)(?:\/([^/]+)(?:\/[^/]*)?)?$/.exec(pathname);
  if (!m) return { op: "unknown" };
  const version = Number(m[1]);
  const name = m[2] ?? "";
  if (name === "authorize_account") return { op: "authorize", version };
  if (name === "upload_file" && m[3] && method === "POST") return { op: "upload", version, id: m[3] };
  if (name === "upload_part" && m[3] && method === "POST") return { op: "upload_part", version, id: decodeURIComponent(m[3]) };
  if (name === "download_file_by_id") return { op: "download", version };
  if (isApiOp(name) && (B2_OPS as readonly string[]).includes(name)) return { op: name as B2Op, version };
  return { op: "unknown" };
}

function matches(fault: B2Fault, op: B2Op | "unknown"): boolean {
  if (fault.op === undefined) return true;
  return typeof fault.op === "string" ? fault.op === op : fault.op.includes(op as B2Op);
}

/** Reads `afterBytes` of the body, then kills the socket: a connection reset mid-upload. */
function resetConnection(req: IncomingMessage, afterBytes: number): void {
  let seen = 0;
  if (afterBytes <= 0) {
    req.socket.destroy();
    return;
  }
  req.on("data", (c: Buffer) => {
    seen += c.length;
    if (seen >= afterBytes) req.socket.destroy();
  });
  req.on("end", () => req.socket.destroy());
}

/**
 * A B2 native-API server on 127.0.0.1:0 that answers `backblaze-b2@1.7.1` as Backblaze does:
 * token checks, key capabilities and name prefixes, SHA-1 checks, one upload per upload token at a
 * time, large files in parts, every upload of a name kept as a version, private buckets by
 * default, B2's error bodies, bytes kept on disk.
 */
export async function startB2TestServer(opts: B2TestServerOptions = {}): Promise<B2TestServer> {
  const dir = await mkdtemp(join(opts.tmpRoot ?? tmpdir(), "fleet-b2-"));
  const bucketId = randomBytes(12).toString("hex");
  const store = new B2Store(dir, bucketId);
  await store.init();
  const state: B2State = {
    url: "",
    accountId: opts.accountId ?? "a1b2c3d4e5f6",
    keyId: opts.keyId ?? "0014a1b2c3d4e5f0000000001",
    appKey: opts.appKey ?? "K001fleetTestApplicationKey",
    bucketId,
    bucketName: opts.bucketName ?? "fleet-test-bucket",
    bucketType: opts.bucketType ?? "allPrivate",
    restrictedToBucket: opts.restrictedToBucket ?? true,
    capabilities: opts.capabilities ?? ALL_CAPABILITIES,
    namePrefix: opts.namePrefix ?? null,
    recommendedPartSize: opts.recommendedPartSize ?? 100_000_000,
    absoluteMinimumPartSize: opts.absoluteMinimumPartSize ?? 5_000_000,
    store,
    tokens: new TokenRegistry(),
  };
  const counts = new Map<B2Op, number>();
  const requests: B2RequestRecord[] = [];
  let faults: FaultRule[] = [];

  function takeFault(op: B2Op | "unknown"): B2Fault | null {
    const now = Date.now();
    faults = faults.filter((f) => f.remaining > 0 && f.until > now);
    const rule = faults.find((f) => matches(f.fault, op));
    if (!rule) return null;
    rule.remaining -= 1;
    return rule.fault;
  }

  async function dispatch(req: IncomingMessage, res: ServerResponse, r: Route, record: B2RequestRecord): Promise<void> {
    const fault = takeFault(r.op);
    if (fault && !fault.dropReply) {
      record.injected = true;
      if (fault.reset) return resetConnection(req, fault.afterBytes ?? 0);
      throw faultError(fault.status ?? 503, fault.message, fault.code, fault.retryAfterSec);
    }
    const body = await answer(req, res, r);
    if (body === null) return;
    if (fault?.dropReply) {
      record.injected = true;
      req.socket.destroy();
      return;
    }
    sendJson(res, 200, body);
  }

  /** Carries out one request; returns the JSON reply, or null when it has streamed its own (downloads). */
  async function answer(req: IncomingMessage, res: ServerResponse, r: Route): Promise<Record<string, unknown> | null> {
    const url = new URL(req.url ?? "/", state.url);
    switch (r.op) {
      case "unknown":
        throw new B2HttpError(404, "not_found", `no such API: ${req.method ?? "?"} ${url.pathname}`);
      case "authorize":
        await drain(req);
        return authorize(state, req, r.version);
      case "download": {
        let obj: B2StoredObject | undefined;
        let name: string | null = null;
        if (url.pathname.startsWith("/file/")) {
          const [, , bucket = "", ...rest] = url.pathname.split("/");
          name = rest.map((s) => decodeURIComponent(s)).join("/");
          obj = bucket === state.bucketName ? store.objects.get(name) : undefined;
        } else {
          obj = store.byId(url.searchParams.get("fileId"));
        }
        await sendObject(state, req, res, obj, name, (t) => state.tokens.check(t, { kind: "account" }));
        return null;
      }
      case "upload":
      case "upload_part": {
        const token = header(req, "authorization");
        if (r.op === "upload") state.tokens.check(token, { kind: "upload", bucketId: r.id ?? "" });
        else state.tokens.check(token, { kind: "part", fileId: r.id ?? "" });
        const done = state.tokens.beginUpload(token ?? "");
        try {
          return r.op === "upload" ? await handleUpload(state, req) : await handleUploadPart(state, req, r.id ?? "");
        } finally {
          done();
        }
      }
      default:
        state.tokens.check(header(req, "authorization"), { kind: "account" });
        return handleApiCall(state, r.op, req);
    }
  }

  const server = createServer((req, res) => {
    const pathname = new URL(req.url ?? "/", "http://x").pathname;
    const r = route(req.method ?? "GET", pathname);
    if (r.op !== "unknown") counts.set(r.op, (counts.get(r.op) ?? 0) + 1);
    const record: B2RequestRecord = {
      op: r.op, method: req.method ?? "", path: pathname, status: null, at: Date.now(), injected: false, userAgent: header(req, "user-agent") ?? null,
    };
    requests.push(record);
    res.on("finish", () => (record.status = res.statusCode));
    dispatch(req, res, r, record).catch(async (err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const b2err = err instanceof B2HttpError ? err : new B2HttpError(500, "internal_error", err instanceof Error ? err.message : String(err));
      await drain(req);
      if (!res.destroyed) sendB2Error(res, b2err);
    });
  });
  // A 1 GiB upload over loopback must not hit Node's default 5-minute request timeout on a busy box.
  server.requestTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const strip = ({ path: _path, ...rest }: B2StoredObject): Omit<B2StoredObject, "path"> => rest;

  return {
    url: state.url,
    authorizeUrl: `${state.url}/b2api/v2/b2_authorize_account`,
    keyId: state.keyId,
    appKey: state.appKey,
    accountId: state.accountId,
    bucketName: state.bucketName,
    bucketId,
    dir,
    env: () => ({
      B2_KEY_ID: state.keyId,
      B2_APP_KEY: state.appKey,
      B2_BUCKET_NAME: state.bucketName,
      B2_AUTHORIZE_URL: `${state.url}/b2api/v2/b2_authorize_account`,
    }),
    expireTokens: () => state.tokens.expireAll(),
    failNext: (n, fault = {}) => void faults.push({ fault, remaining: n, until: Infinity }),
    failFor: (ms, fault = {}) => void faults.push({ fault, remaining: Infinity, until: Date.now() + ms }),
    clearFaults: () => void (faults = []),
    requestCount: (op) => (op ? (counts.get(op) ?? 0) : [...counts.values()].reduce((a, b) => a + b, 0)),
    requests,
    listObjects: () => [...store.objects.values()].sort((a, b) => a.fileName.localeCompare(b.fileName)).map(strip),
    listFileVersions: () => [...store.versions].sort((a, b) => a.fileName.localeCompare(b.fileName)).map(strip),
    readObject: (name) => store.read(name),
    objectPath: (name) => store.objects.get(name)?.path,
    unfinishedLargeFiles: () => [...store.largeFiles.values()].map((lf) => ({ fileId: lf.fileId, fileName: lf.fileName, parts: lf.parts.size })),
    backdateUnfinishedLargeFiles: (ms) => {
      for (const lf of store.largeFiles.values()) lf.uploadTimestamp -= ms;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
