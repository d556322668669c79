export interface StoredObject {
  key: string;
  url: string;
  bytes: number;
  /** Hex SHA-1 the store confirmed, when it checks one. */
  sha1: string | null;
}

/**
 * Where outputs go. `check()` runs before claiming (bad credentials are a reason not to claim,
 * not a reason to burn every job, §8.18); uploads take the job's AbortSignal.
 */
export interface OutputStorage {
  readonly kind: "local" | "b2";
  check(signal: AbortSignal): Promise<void>;
  putFile(opts: { filePath: string; key: string; contentType: string; signal: AbortSignal }): Promise<StoredObject>;
  putJson(opts: { key: string; value: unknown; signal: AbortSignal }): Promise<StoredObject>;
  close(): Promise<void>;
}

/** `{prefix}/{musetalk_job_id}.mp4`, the original's key, so existing links and scripts keep working. */
export function outputKey(prefix: string, jobId: string, ext: string): string {
  const clean = prefix.replace(/^\/+|\/+$/g, "");
  return clean ? `${clean}/${jobId}${ext}` : `${jobId}${ext}`;
}

/** Each path segment URL-encoded, the slashes kept. */
export function encodeKey(key: string): string {
  return key.split("/").map(encodeURIComponent).join("/");
}
