import { JobId } from "@fleet/contract";
import { JobError } from "../errors/job-error.js";

export interface StoredObject {
  key: string;
  url: string;
  bytes: number;
  /** Hex SHA-1 the store confirmed, when it checks one. */
  sha1: string | null;
}

/**
 * Where outputs go. `check()` runs before claiming (bad credentials are a reason not to claim,
 * not a reason to burn every job); uploads take the job's AbortSignal.
 */
export interface OutputStorage {
  readonly kind: "local" | "b2";
  /** Every key this store writes starts with it; `putFile`/`putJson` refuse anything else. */
  readonly prefix: string;
  check(signal: AbortSignal): Promise<void>;
  putFile(opts: { filePath: string; key: string; contentType: string; signal: AbortSignal }): Promise<StoredObject>;
  putJson(opts: { key: string; value: unknown; signal: AbortSignal }): Promise<StoredObject>;
  close(): Promise<void>;
}

/**
 * `{prefix}/{musetalk_job_id}.mp4`, the original's key, so existing links and scripts keep working.
 * Built only from a UUID: a caller-chosen id such as `<other>.mp4/../<other>` would otherwise
 * overwrite another job's output.
 */
export function outputKey(prefix: string, jobId: string, ext: string): string {
  if (!JobId.safeParse(jobId).success) throw JobError.processing("upload", "refusing an output key for a job id that is not a UUID", false);
  const clean = cleanPrefix(prefix);
  return clean ? `${clean}/${jobId}${ext}` : `${jobId}${ext}`;
}

export function cleanPrefix(prefix: string): string {
  return prefix.replace(/^\/+|\/+$/g, "");
}

/**
 * The store's own guard, whatever built the key: a plain relative key of non-empty segments under
 * `prefix`, without `.`/`..`, backslashes or control characters. Local and B2 alike, so no key
 * can name a file outside the output prefix even if a caller upstream forgot to validate.
 */
export function checkStorageKey(prefix: string, key: string): void {
  const clean = cleanPrefix(prefix);
  const problem =
    key.length === 0 || key.length > 1024
      ? "empty or too long"
      : [...key].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)
        ? "contains a control character"
        : key.includes("\\")
          ? "contains a backslash"
          : key.startsWith("/")
            ? "is absolute"
            : key.split("/").some((seg) => seg === "" || seg === "." || seg === "..")
              ? "has an empty, . or .. segment"
              : clean && !key.startsWith(`${clean}/`)
                ? `is outside the prefix ${clean}/`
                : null;
  if (problem) throw JobError.processing("upload", `storage key ${JSON.stringify(key.slice(0, 200))} ${problem}`, false);
}

/** Each path segment URL-encoded, the slashes kept. */
export function encodeKey(key: string): string {
  return key.split("/").map(encodeURIComponent).join("/");
}
