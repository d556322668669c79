import { ErrorStage, ErrorType, type ErrorInfo, type JobStatusReport } from "@fleet/contract";

/** errno codes that say the box itself ran out of something: the worker's fault at any stage. */
const SYSTEM_CODES = new Set(["ENOSPC", "EMFILE", "ENFILE", "ENOMEM", "EIO", "EDQUOT"]);

/**
 * Whether a failure was caused by the job's inputs rather than by the worker that ran it. Such a
 * failure counts against the job's attempts (media errors fail it at once) and never toward the
 * worker's quarantine: one client's bad or unreachable URLs must not idle GPUs that serve everyone.
 * Fleet workers say so in `error_info.fault`; older ones report a download that kept failing
 * (input host 5xx, timeouts) as a retryable processing error at the download stage, and a download
 * stage failure carrying an errno of this box (disk full, out of file handles) stays the worker's.
 */
export function isInputFault(info: ErrorInfo): boolean {
  // A worker that says whose fault it was knows best (it saw the errno, the HTTP status, the bound).
  if (info.fault !== undefined && info.fault !== null) return info.fault === "job";
  if (info.error_type === "media_error" || info.error_type === "download_error") return true;
  if (info.stage !== "download" || info.error_type !== "processing_error") return false;
  const code = info.details?.code;
  return !(typeof code === "string" && SYSTEM_CODES.has(code));
}

/**
 * What a failure report means. Fleet workers send `error_info`; the original workers send only an
 * error string, classified here from what they put in it:
 * - the buffer loop sends `repr()` of its httpx exception, e.g. `HTTPStatusError("Client error
 *   '422 Unprocessable Entity' for url 'http://localhost:8000/generate' …")` — /generate answers
 *   422 for media and download problems (the input's fault, final), 500 for processing errors;
 * - the main-tier loop sends `HTTP 422: <the /generate body>`, whose JSON carries the original's
 *   own `error_type`, `stage`, `retryable` and message — taken as they are;
 * - both send `ReadTimeout…` / `ConnectError…` when their own /generate hung or was down.
 * What the text does not explain stays an unknown error, retryable, and the worker's.
 */
export function errorInfoOf(report: Pick<JobStatusReport, "error" | "error_info">): ErrorInfo {
  if (report.error_info) return report.error_info;
  const text = report.error ?? "";
  return classifyOriginalError(text);
}

export function classifyOriginalError(text: string): ErrorInfo {
  const message = text === "" ? "the worker reported a failure without details" : text;
  const status = httpStatusIn(text);
  const details = { classified_from: "error_text", ...(status !== null ? { http_status: status } : {}) };

  const body = generateBodyIn(text);
  if (body) {
    return {
      error_type: body.error_type,
      stage: body.stage,
      message: body.message ?? message,
      retryable: body.error_type === "media_error" ? false : body.retryable,
      details,
    };
  }
  if (/no face detected/i.test(text)) {
    return { error_type: "media_error", stage: "preprocessing", message, retryable: false, details };
  }
  if (status === 422 || /invalid (input|url|media|video|audio|file)|unsupported (media|format|codec)|corrupt/i.test(text)) {
    return { error_type: "media_error", stage: "validation", message, retryable: false, details };
  }
  if (/download/i.test(text)) {
    return { error_type: "download_error", stage: "download", message, retryable: true, details };
  }
  if (status !== null && status >= 500) {
    return { error_type: "processing_error", stage: "unknown", message, retryable: true, details };
  }
  if (/timeout|timed out|connecterror|connection refused|remoteprotocolerror/i.test(text)) {
    return { error_type: "processing_error", stage: "inference", message, retryable: true, details };
  }
  return { error_type: "unknown_error", stage: "unknown", message, retryable: true, details };
}

/** `HTTP 422: …` (main-tier loop) or httpx's `Client error '422 …'` / `Server error '500 …'`. */
function httpStatusIn(text: string): number | null {
  const match = /^HTTP (\d{3})\b/.exec(text) ?? /\b(?:Client|Server) error '(\d{3})\b/.exec(text);
  return match?.[1] ? Number(match[1]) : null;
}

interface GenerateFailureBody {
  error_type: ErrorType;
  stage: ErrorStage;
  retryable: boolean;
  message: string | undefined;
}

/**
 * The original /generate's failure body `{status:"failed", error_type, error_message, stage,
 * retryable, …}`, when the main-tier loop quoted it after `HTTP nnn: `, or FastAPI's own 422
 * `{"detail": [...]}` for a request it could not parse (a bad URL: the input's fault).
 */
function generateBodyIn(text: string): GenerateFailureBody | null {
  const match = /^HTTP \d{3}: (\{[\s\S]*\})\s*$/.exec(text);
  if (!match?.[1]) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(match[1]);
  } catch {
    return null;
  }
  if (typeof parsed !== "object" || parsed === null) return null;
  const body = parsed as Record<string, unknown>;
  if (Array.isArray(body.detail)) {
    return { error_type: "media_error", stage: "validation", retryable: false, message: `invalid input: ${JSON.stringify(body.detail).slice(0, 500)}` };
  }
  const type = ErrorType.safeParse(body.error_type);
  if (!type.success) return null;
  const stage = ErrorStage.safeParse(body.stage);
  return {
    error_type: type.data,
    stage: stage.success ? stage.data : "unknown",
    retryable: body.retryable === true,
    message: typeof body.error_message === "string" ? body.error_message : undefined,
  };
}
