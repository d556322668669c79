import type { Logger } from "../logger.js";
import type { B2Account } from "./b2-account.js";
import { toB2CallError } from "./b2-call-error.js";

interface UnfinishedPage {
  files: Array<{ fileId: string; fileName: string; uploadTimestamp: number }>;
  nextFileId: string | null;
}

/** b2_list_unfinished_large_files pages hold at most 100 entries. */
const PAGE = 100;

/**
 * Cancels the large files under `namePrefix` started before `olderThanMs` ago and never finished
 * or cancelled: a crash mid-upload, a cancel lost with its process, a b2_start_large_file retried
 * after its reply was lost. Their parts are billed as storage until cancelled. The age keeps this
 * away from uploads other workers have in flight right now. backblaze-b2 has no call for the
 * listing, so it goes over fetch with the account token.
 */
export async function cancelStaleLargeFiles(opts: {
  account: B2Account;
  namePrefix: string;
  olderThanMs: number;
  userAgent: string;
  signal: AbortSignal;
  log: Logger;
}): Promise<{ cancelled: number; kept: number }> {
  const { account, log } = opts;
  const cutoff = Date.now() - opts.olderThanMs;
  let cancelled = 0;
  let kept = 0;
  let startFileId: string | null = null;
  do {
    const page: UnfinishedPage = await listUnfinished(opts, startFileId);
    for (const f of page.files) {
      if (f.uploadTimestamp >= cutoff) {
        kept += 1;
        continue;
      }
      try {
        await account.b2.cancelLargeFile({ fileId: f.fileId, axiosOverride: { signal: opts.signal, timeout: 30_000 } });
        cancelled += 1;
        log.info({ fileId: f.fileId, fileName: f.fileName, startedAt: new Date(f.uploadTimestamp).toISOString() }, "b2_stale_large_file_cancelled");
      } catch (err) {
        log.warn({ fileId: f.fileId, err: toB2CallError(err, "b2_cancel_large_file") }, "b2_cancel_large_file_failed");
      }
    }
    startFileId = page.nextFileId;
  } while (startFileId !== null);
  return { cancelled, kept };
}

async function listUnfinished(
  opts: { account: B2Account; namePrefix: string; userAgent: string; signal: AbortSignal },
  startFileId: string | null,
): Promise<UnfinishedPage> {
  const { account } = opts;
  const body = { bucketId: account.bucketId, namePrefix: opts.namePrefix, maxFileCount: PAGE, ...(startFileId ? { startFileId } : {}) };
  let res: Response;
  try {
    res = await fetch(`${account.apiUrl}/b2api/v2/b2_list_unfinished_large_files`, {
      method: "POST",
      headers: { Authorization: account.b2.authorizationToken ?? "", "Content-Type": "application/json", "User-Agent": opts.userAgent },
      body: JSON.stringify(body),
      signal: AbortSignal.any([opts.signal, AbortSignal.timeout(30_000)]),
    });
  } catch (err) {
    throw toB2CallError(err, "b2_list_unfinished_large_files");
  }
  const text = await res.text();
  let data: unknown = text;
  try {
    data = JSON.parse(text);
  } catch {
    // keep the text for the error message
  }
  if (!res.ok) {
    throw toB2CallError({ response: { status: res.status, data, headers: { "retry-after": res.headers.get("retry-after") ?? undefined } } }, "b2_list_unfinished_large_files");
  }
  return data as UnfinishedPage;
}
