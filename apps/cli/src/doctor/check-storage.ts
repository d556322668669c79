import { access, constants, mkdir } from "node:fs/promises";
import B2 from "backblaze-b2";
import type { WorkerBoxConfig } from "../config.js";
import { fail, ok } from "./doctor-check.js";
import type { CheckResult } from "./doctor-check.js";

const CHECK_STORAGE = "storage credentials";

/** What the worker's B2 storage calls need; it refuses to start without them, so doctor says so first. */
const WORKER_CAPABILITIES = ["listBuckets", "listFiles", "readFiles", "writeFiles"];

interface AxiosLikeError {
  code?: string;
  message: string;
  response?: { status: number; data?: { code?: string; message?: string } };
}

function describeB2Error(err: unknown): { status: number | null; text: string } {
  const e = err as AxiosLikeError;
  if (e.response !== undefined) {
    const body = e.response.data;
    return { status: e.response.status, text: `${e.response.status} ${body?.code ?? ""} ${body?.message ?? ""}`.trim() };
  }
  return { status: null, text: e.code ?? e.message };
}

/**
 * b2_authorize_account with the worker's keys, then what the worker's start-up check looks at:
 * bucket, capabilities, name prefix against B2_PREFIX, the bucket's type. A key that authorizes
 * but cannot serve B2_BUCKET_NAME keeps the worker from claiming anything, so find out now.
 */
export async function checkStorage(cfg: WorkerBoxConfig, timeoutMs: number): Promise<CheckResult> {
  if (cfg.storage === "local") {
    try {
      await mkdir(cfg.localStorageDir, { recursive: true });
      await access(cfg.localStorageDir, constants.W_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      return fail(CHECK_STORAGE, `LOCAL_STORAGE_DIR ${cfg.localStorageDir} is not writable (${code})`, "point LOCAL_STORAGE_DIR at a writable directory");
    }
    return ok(CHECK_STORAGE, `STORAGE=local: outputs stay on this machine in ${cfg.localStorageDir} (development; production uses b2)`);
  }
  if (cfg.storage !== "b2") {
    return fail(CHECK_STORAGE, `STORAGE=${cfg.storage} is not a storage`, "set STORAGE=b2 (production) or STORAGE=local (development)");
  }
  const missing = [
    cfg.b2KeyId === undefined ? "B2_KEY_ID" : null,
    cfg.b2AppKey === undefined ? "B2_APP_KEY" : null,
    cfg.b2BucketName === undefined ? "B2_BUCKET_NAME" : null,
  ].filter((n) => n !== null);
  if (missing.length > 0 || cfg.b2KeyId === undefined || cfg.b2AppKey === undefined || cfg.b2BucketName === undefined) {
    return fail(CHECK_STORAGE, `${missing.join(", ")} not set`, "copy the B2 application key and bucket name into the worker's .env");
  }
  const bucket = cfg.b2BucketName;
  const authorizeUrl = cfg.b2AuthorizeUrl ?? "https://api.backblazeb2.com/b2api/v2/b2_authorize_account";
  if (!/\/b2api\/v2\/b2_authorize_account\/?$/.test(URL.parse(authorizeUrl)?.pathname ?? "")) {
    return fail(CHECK_STORAGE, `B2_AUTHORIZE_URL ${authorizeUrl} is not a v2 URL`, "use https://api.backblazeb2.com/b2api/v2/b2_authorize_account: the worker's B2 library speaks v2 only");
  }
  // No retries: a wrong key must fail in one round trip, not after axios-retry's backoff.
  const b2 = new B2({ applicationKeyId: cfg.b2KeyId, applicationKey: cfg.b2AppKey, axios: { timeout: timeoutMs }, retry: { retries: 0 } });
  let allowed;
  try {
    const res = await b2.authorize({ axiosOverride: { url: authorizeUrl } });
    allowed = res.data.allowed ?? {};
  } catch (err) {
    const e = describeB2Error(err);
    if (e.status === 401) {
      return fail(CHECK_STORAGE, `B2 refused B2_KEY_ID/B2_APP_KEY (${e.text})`, "create a new application key in the Backblaze console and copy both values exactly");
    }
    return fail(CHECK_STORAGE, `b2_authorize_account failed: ${e.text}`, `check outbound HTTPS to ${authorizeUrl}`);
  }
  if (allowed.bucketName != null && allowed.bucketName !== bucket) {
    return fail(CHECK_STORAGE, `the key is restricted to bucket ${allowed.bucketName}, not B2_BUCKET_NAME=${bucket}`, `set B2_BUCKET_NAME=${allowed.bucketName} or use a key for ${bucket}`);
  }
  const caps = allowed.capabilities ?? [];
  const lacking = WORKER_CAPABILITIES.filter((c) => !caps.includes(c));
  if (lacking.length > 0) {
    return fail(
      CHECK_STORAGE,
      `the key lacks ${lacking.join(", ")} (has: ${caps.join(", ") || "none"})`,
      "create a key with read and write access to the bucket: the worker uploads (writeFiles), reads the bucket's type (listBuckets) and looks up files after a lost reply (readFiles, listFiles)",
    );
  }
  const prefix = (cfg.b2Prefix ?? "avatar/outputs").replace(/^\/+|\/+$/g, "");
  const names = prefix ? `${prefix}/` : "";
  if (allowed.namePrefix && !names.startsWith(allowed.namePrefix)) {
    return fail(
      CHECK_STORAGE,
      `the key only allows names starting with ${allowed.namePrefix}, but outputs go to ${names || "the bucket's root"} (B2_PREFIX=${prefix})`,
      `set B2_PREFIX under ${allowed.namePrefix}, or use a key whose name prefix covers ${names || "the whole bucket"}`,
    );
  }
  let found;
  try {
    const res = await b2.getBucket({ bucketName: bucket });
    found = res.data.buckets.find((b) => b.bucketName === bucket);
  } catch (err) {
    return fail(CHECK_STORAGE, `b2_list_buckets failed: ${describeB2Error(err).text}`, "give the key the listBuckets capability");
  }
  if (found === undefined) {
    return fail(CHECK_STORAGE, `bucket ${bucket} does not exist in this account`, "fix B2_BUCKET_NAME (names are case-sensitive)");
  }
  if (found.bucketType !== "allPublic") {
    if (!caps.includes("shareFiles")) {
      return fail(CHECK_STORAGE, `bucket ${bucket} is ${found.bucketType} and the key lacks shareFiles, which its output links need`, "give the key shareFiles, or make the bucket public (see README: B2 buckets)");
    }
    return ok(CHECK_STORAGE, `B2 key authorized, bucket ${bucket} writable; ${found.bucketType}: output links are authorized for B2_DOWNLOAD_URL_TTL_SEC`);
  }
  return ok(CHECK_STORAGE, `B2 key authorized, bucket ${bucket} writable; allPublic: output links are plain and never expire`);
}
