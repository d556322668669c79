import type { IncomingMessage } from "node:http";
import type { B2State } from "./b2-http.js";
import { B2HttpError, header, readJson, requireCapability, requireNameAllowed, requireString } from "./b2-http.js";
import { B2StoreError, checkFileName, fileJson, resolveContentType } from "./b2-store.js";

/** b2_authorize_account: Basic auth with the configured keyId/appKey. v3 nests the API facts in apiInfo. */
export function authorize(state: B2State, req: IncomingMessage, version: number): Record<string, unknown> {
  const auth = header(req, "authorization") ?? "";
  const m = /^Basic\s+(.+)$/i.exec(auth);
  const decoded = m?.[1] ? Buffer.from(m[1], "base64").toString("utf8") : "";
  const sep = decoded.indexOf(":");
  const keyId = decoded.slice(0, sep);
  const appKey = decoded.slice(sep + 1);
  if (sep < 0 || keyId !== state.keyId || appKey !== state.appKey) {
    throw new B2HttpError(401, "unauthorized", "The applicationKeyId and/or the applicationKey are wrong.");
  }
  const token = state.tokens.issue({ kind: "account" });
  const capabilities = [...state.capabilities];
  const bucket = state.restrictedToBucket ? { bucketId: state.bucketId, bucketName: state.bucketName } : { bucketId: null, bucketName: null };
  if (version >= 3) {
    return {
      accountId: state.accountId,
      authorizationToken: token,
      apiInfo: {
        storageApi: {
          apiUrl: state.url,
          downloadUrl: state.url,
          s3ApiUrl: state.url,
          recommendedPartSize: state.recommendedPartSize,
          absoluteMinimumPartSize: state.absoluteMinimumPartSize,
          capabilities,
          namePrefix: state.namePrefix,
          ...bucket,
          infoType: "storageApi",
        },
      },
      applicationKeyExpirationTimestamp: null,
    };
  }
  return {
    accountId: state.accountId,
    authorizationToken: token,
    allowed: { ...bucket, capabilities, namePrefix: state.namePrefix },
    apiUrl: state.url,
    downloadUrl: state.url,
    s3ApiUrl: state.url,
    recommendedPartSize: state.recommendedPartSize,
    absoluteMinimumPartSize: state.absoluteMinimumPartSize,
    minimumPartSize: state.recommendedPartSize,
  };
}

function bucketJson(state: B2State): Record<string, unknown> {
  return {
    accountId: state.accountId,
    bucketId: state.bucketId,
    bucketName: state.bucketName,
    bucketType: state.bucketType,
    bucketInfo: {},
    corsRules: [],
    lifecycleRules: [],
    options: [],
    revision: 1,
  };
}

function checkBucketId(state: B2State, bucketId: unknown): void {
  if (bucketId !== state.bucketId) throw new B2HttpError(400, "bad_request", `Invalid bucketId: ${String(bucketId)}`);
}

type Handler = (state: B2State, body: Record<string, unknown>) => Promise<Record<string, unknown>> | Record<string, unknown>;

/** The capability each call needs, as B2's API reference lists it. */
const CAPABILITY: Record<string, string> = {
  list_buckets: "listBuckets",
  get_upload_url: "writeFiles",
  start_large_file: "writeFiles",
  get_upload_part_url: "writeFiles",
  finish_large_file: "writeFiles",
  cancel_large_file: "writeFiles",
  list_parts: "writeFiles",
  list_unfinished_large_files: "listFiles",
  list_file_names: "listFiles",
  list_file_versions: "listFiles",
  get_file_info: "readFiles",
  get_download_authorization: "shareFiles",
  delete_file_version: "deleteFiles",
};

/** A listing prefix must lie inside the key's name prefix (v2: otherwise the call is unauthorized). */
function listingPrefix(state: B2State, value: unknown): string {
  const prefix = typeof value === "string" ? value : "";
  if (state.namePrefix !== null && !prefix.startsWith(state.namePrefix)) requireNameAllowed(state, prefix);
  return prefix;
}

const handlers: Record<string, Handler> = {
  list_buckets(state, body) {
    if (body.accountId !== state.accountId) throw new B2HttpError(401, "unauthorized", "accountId does not match the auth token");
    const byName = typeof body.bucketName === "string" ? body.bucketName : undefined;
    const byId = typeof body.bucketId === "string" ? body.bucketId : undefined;
    const named = byName !== undefined || byId !== undefined;
    if (state.restrictedToBucket && !named) {
      throw new B2HttpError(401, "unauthorized", `application key is restricted to bucket: ${state.bucketName}`);
    }
    const match = (byName === undefined || byName === state.bucketName) && (byId === undefined || byId === state.bucketId);
    if (state.restrictedToBucket && !match) {
      throw new B2HttpError(401, "unauthorized", `application key is restricted to bucket: ${state.bucketName}`);
    }
    return { buckets: match ? [bucketJson(state)] : [] };
  },

  get_upload_url(state, body) {
    checkBucketId(state, body.bucketId);
    return {
      bucketId: state.bucketId,
      uploadUrl: `${state.url}/b2api/v2/b2_upload_file/${state.bucketId}/${Date.now().toString(36)}`,
      authorizationToken: state.tokens.issue({ kind: "upload", bucketId: state.bucketId }),
    };
  },

  async start_large_file(state, body) {
    checkBucketId(state, body.bucketId);
    const fileName = requireString(body, "fileName");
    const nameProblem = checkFileName(fileName);
    if (nameProblem) throw new B2HttpError(400, "bad_request", nameProblem);
    requireNameAllowed(state, fileName);
    const info = body.fileInfo && typeof body.fileInfo === "object" ? (body.fileInfo as Record<string, unknown>) : {};
    const fileInfo = Object.fromEntries(Object.entries(info).map(([k, v]) => [k.toLowerCase(), String(v)]));
    const ct = resolveContentType(typeof body.contentType === "string" ? body.contentType : undefined, fileName);
    const lf = await state.store.startLargeFile(fileName, ct, fileInfo);
    return {
      accountId: state.accountId, action: "start", bucketId: lf.bucketId, contentLength: 0, contentSha1: "none",
      contentMd5: null, contentType: lf.contentType, fileId: lf.fileId, fileInfo: lf.fileInfo, fileName: lf.fileName,
      fileRetention: { isClientAuthorizedToRead: true, value: null }, legalHold: { isClientAuthorizedToRead: true, value: null },
      serverSideEncryption: { algorithm: null, mode: null }, uploadTimestamp: lf.uploadTimestamp,
    };
  },

  get_upload_part_url(state, body) {
    const lf = state.store.largeFile(body.fileId);
    return {
      fileId: lf.fileId,
      uploadUrl: `${state.url}/b2api/v2/b2_upload_part/${lf.fileId}/${Date.now().toString(36)}`,
      authorizationToken: state.tokens.issue({ kind: "part", fileId: lf.fileId }),
    };
  },

  async finish_large_file(state, body) {
    const obj = await state.store.finishLargeFile(body.fileId, body.partSha1Array, state.absoluteMinimumPartSize);
    return fileJson(state.accountId, obj);
  },

  async cancel_large_file(state, body) {
    const lf = await state.store.cancelLargeFile(body.fileId);
    return { accountId: state.accountId, bucketId: lf.bucketId, fileId: lf.fileId, fileName: lf.fileName };
  },

  list_parts(state, body) {
    const lf = state.store.largeFile(body.fileId);
    const start = typeof body.startPartNumber === "number" && body.startPartNumber > 0 ? body.startPartNumber : 1;
    const max = typeof body.maxPartCount === "number" && body.maxPartCount > 0 ? Math.min(body.maxPartCount, 1000) : 100;
    const all = [...lf.parts.values()].filter((p) => p.partNumber >= start).sort((a, b) => a.partNumber - b.partNumber);
    const page = all.slice(0, max);
    return {
      parts: page.map((p) => ({
        fileId: lf.fileId, partNumber: p.partNumber, contentLength: p.size, contentSha1: p.sha1,
        contentMd5: null, serverSideEncryption: { algorithm: null, mode: null }, uploadTimestamp: p.uploadTimestamp,
      })),
      nextPartNumber: all.length > max ? (all[max]?.partNumber ?? null) : null,
    };
  },

  list_unfinished_large_files(state, body) {
    checkBucketId(state, body.bucketId);
    const prefix = listingPrefix(state, body.namePrefix);
    const start = typeof body.startFileId === "string" ? body.startFileId : null;
    const max = typeof body.maxFileCount === "number" && body.maxFileCount > 0 ? Math.min(body.maxFileCount, 100) : 100;
    // Oldest first, as B2 lists them.
    const all = [...state.store.largeFiles.values()].filter((lf) => lf.fileName.startsWith(prefix));
    const from = start === null ? 0 : Math.max(0, all.findIndex((lf) => lf.fileId === start));
    const page = all.slice(from, from + max);
    return {
      files: page.map((lf) => ({
        accountId: state.accountId, action: "start", bucketId: lf.bucketId, contentLength: 0, contentSha1: "none",
        contentMd5: null, contentType: lf.contentType, fileId: lf.fileId, fileInfo: lf.fileInfo, fileName: lf.fileName,
        uploadTimestamp: lf.uploadTimestamp,
      })),
      nextFileId: all[from + max]?.fileId ?? null,
    };
  },

  list_file_versions(state, body) {
    checkBucketId(state, body.bucketId);
    const prefix = listingPrefix(state, body.prefix);
    const start = typeof body.startFileName === "string" ? body.startFileName : "";
    const max = typeof body.maxFileCount === "number" && body.maxFileCount > 0 ? Math.min(body.maxFileCount, 10_000) : 100;
    // By name, then newest first, as B2 lists versions.
    const all = state.store.versions
      .filter((v) => v.fileName.startsWith(prefix) && v.fileName >= start)
      .sort((a, b) => (a.fileName === b.fileName ? b.uploadTimestamp - a.uploadTimestamp : a.fileName < b.fileName ? -1 : 1));
    const next = all[max];
    return {
      files: all.slice(0, max).map((v) => fileJson(state.accountId, v)),
      nextFileName: next?.fileName ?? null,
      nextFileId: next?.fileId ?? null,
    };
  },

  get_download_authorization(state, body) {
    checkBucketId(state, body.bucketId);
    const prefix = requireString(body, "fileNamePrefix");
    requireNameAllowed(state, prefix);
    const seconds = body.validDurationInSeconds;
    // B2: at least one second, at most one week.
    if (typeof seconds !== "number" || !Number.isInteger(seconds) || seconds < 1 || seconds > 604_800) {
      throw new B2HttpError(400, "bad_request", `validDurationInSeconds must be between 1 and 604800: ${String(seconds)}`);
    }
    const authorizationToken = state.tokens.issue({ kind: "download", bucketId: state.bucketId, prefix, expiresAt: Date.now() + seconds * 1000 });
    return { bucketId: state.bucketId, fileNamePrefix: prefix, authorizationToken };
  },

  list_file_names(state, body) {
    checkBucketId(state, body.bucketId);
    const prefix = listingPrefix(state, body.prefix);
    const start = typeof body.startFileName === "string" ? body.startFileName : "";
    const delimiter = typeof body.delimiter === "string" && body.delimiter !== "" ? body.delimiter : null;
    const max = typeof body.maxFileCount === "number" && body.maxFileCount > 0 ? Math.min(body.maxFileCount, 10_000) : 100;
    const names = [...state.store.objects.keys()].filter((n) => n.startsWith(prefix) && n >= start).sort();
    const files: Record<string, unknown>[] = [];
    const folders = new Set<string>();
    let nextFileName: string | null = null;
    for (const name of names) {
      const rest = name.slice(prefix.length);
      const cut = delimiter ? rest.indexOf(delimiter) : -1;
      const folder = cut >= 0 && delimiter ? prefix + rest.slice(0, cut + delimiter.length) : null;
      if (folder && folders.has(folder)) continue;
      if (files.length >= max) {
        nextFileName = folder ?? name;
        break;
      }
      if (folder) {
        folders.add(folder);
        files.push({ action: "folder", fileName: folder, fileId: null, contentLength: 0, contentSha1: null, fileInfo: {}, uploadTimestamp: 0 });
        continue;
      }
      const obj = state.store.objects.get(name);
      if (obj) files.push(fileJson(state.accountId, obj));
    }
    return { files, nextFileName };
  },

  get_file_info(state, body) {
    const obj = state.store.byId(body.fileId);
    if (!obj) throw new B2HttpError(404, "not_found", `File not present: ${String(body.fileId)}`);
    return fileJson(state.accountId, obj);
  },

  async delete_file_version(state, body) {
    const obj = await state.store.deleteFile(body.fileName, body.fileId);
    return { fileId: obj.fileId, fileName: obj.fileName };
  },
};

export function isApiOp(op: string): boolean {
  return Object.hasOwn(handlers, op);
}

/** Runs one JSON API call after its account token has been checked. */
export async function handleApiCall(state: B2State, op: string, req: IncomingMessage): Promise<Record<string, unknown>> {
  const handler = handlers[op];
  if (!handler) throw new B2HttpError(404, "not_found", `unknown API call: b2_${op}`);
  const body = await readJson(req);
  const capability = CAPABILITY[op];
  if (capability) requireCapability(state, capability);
  try {
    return await handler(state, body);
  } catch (err) {
    if (err instanceof B2StoreError) throw new B2HttpError(err.status, err.code, err.message);
    throw err;
  }
}
