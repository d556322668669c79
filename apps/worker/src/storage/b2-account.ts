import B2, { type B2Authorization } from "backblaze-b2";
import type { B2Settings } from "../config.js";
import { B2CallError, toB2CallError } from "./b2-call-error.js";

/**
 * What the worker calls, by capability: uploads and large files (writeFiles), the bucket's id and
 * type (listBuckets), finding a file a lost reply hid (readFiles: b2_get_file_info, listFiles:
 * b2_list_file_names) and the unfinished large files to cancel (listFiles). A private bucket also
 * needs shareFiles for its download links.
 */
const REQUIRED_CAPABILITIES = ["listBuckets", "listFiles", "readFiles", "writeFiles"] as const;

/** A bucket whose files anyone may download by name; every other type needs an authorized link. */
const PUBLIC_BUCKET = "allPublic";

export interface B2Account {
  b2: B2;
  at: number;
  apiUrl: string;
  downloadUrl: string;
  bucketId: string;
  bucketType: string;
  /** Private bucket: output links carry a download authorization. */
  authorizedLinks: boolean;
}

type Allowed = NonNullable<B2Authorization["allowed"]>;

/** Why this key cannot serve B2_BUCKET_NAME and B2_PREFIX, or null when it can. */
function keyProblem(allowed: Allowed, s: Pick<B2Settings, "bucketName" | "prefix">): string | null {
  if (allowed.bucketName != null && allowed.bucketName !== s.bucketName) {
    return `the key is restricted to bucket ${allowed.bucketName}, not B2_BUCKET_NAME=${s.bucketName}`;
  }
  const caps = allowed.capabilities ?? [];
  const missing = REQUIRED_CAPABILITIES.filter((c) => !caps.includes(c));
  if (missing.length > 0) return `the key lacks the ${missing.join(", ")} capabilit${missing.length > 1 ? "ies" : "y"} (has: ${caps.join(", ") || "none"})`;
  const names = s.prefix ? `${s.prefix}/` : "";
  if (allowed.namePrefix && !names.startsWith(allowed.namePrefix)) {
    return `the key only allows names starting with ${allowed.namePrefix}, but outputs go to ${names || "the bucket's root"} (B2_PREFIX=${s.prefix})`;
  }
  return null;
}

/**
 * b2_authorize_account, then the checks that turn a key that "works" into one that works for us:
 * bucket, capabilities, name prefix, then b2_list_buckets for the bucket's id and type. A mismatch
 * is a `misconfigured` error: not retryable, reported before any job is claimed.
 */
export async function authorizeAccount(s: B2Settings, userAgent: string, signal: AbortSignal): Promise<B2Account> {
  const b2 = new B2({
    applicationKeyId: s.keyId,
    applicationKey: s.appKey,
    axios: { headers: { "User-Agent": userAgent } },
    retry: { retries: 0 },
  });
  let res;
  try {
    res = await b2.authorize({ axiosOverride: { url: s.authorizeUrl, signal, timeout: 30_000 } });
  } catch (err) {
    throw toB2CallError(err, "b2_authorize_account");
  }
  const allowed = res.data.allowed ?? {};
  const problem = keyProblem(allowed, s);
  if (problem) throw new B2CallError("b2_authorize_account", null, "misconfigured", problem);
  if (typeof res.data.apiUrl !== "string" || typeof res.data.downloadUrl !== "string") {
    throw new B2CallError("b2_authorize_account", null, "misconfigured", "the reply has no apiUrl/downloadUrl: B2_AUTHORIZE_URL must be a v2 URL");
  }
  let bucket;
  try {
    const buckets = await b2.getBucket({ bucketName: s.bucketName, axiosOverride: { signal, timeout: 30_000 } });
    bucket = buckets.data.buckets.find((b) => b.bucketName === s.bucketName);
  } catch (err) {
    throw toB2CallError(err, "b2_list_buckets");
  }
  if (!bucket) throw new B2CallError("b2_list_buckets", null, "bucket_not_found", `bucket ${s.bucketName} not found or not allowed for this key`);
  const authorizedLinks = bucket.bucketType !== PUBLIC_BUCKET;
  if (authorizedLinks && !(allowed.capabilities ?? []).includes("shareFiles")) {
    throw new B2CallError(
      "b2_authorize_account",
      null,
      "misconfigured",
      `bucket ${s.bucketName} is ${bucket.bucketType}: its output links need the shareFiles capability, which the key lacks`,
    );
  }
  return {
    b2,
    at: Date.now(),
    apiUrl: res.data.apiUrl.replace(/\/+$/, ""),
    downloadUrl: res.data.downloadUrl.replace(/\/+$/, ""),
    bucketId: bucket.bucketId,
    bucketType: bucket.bucketType,
    authorizedLinks,
  };
}
