import { ERROR_STATUS, ErrorBody, HEADERS, routes } from "@fleet/contract";
import type { FuzzRequest } from "./route-requests.js";
import { isPrivateTarget } from "./urls.js";

export interface FuzzResponse {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
}

const URL_FIELDS = ["video_url", "audio_url", "webhook_url"] as const;

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * What every response must satisfy, whatever was sent. Returns the broken promises (empty when
 * the response is fine); the row check is the caller's, since it needs the database.
 */
export function responseProblems(req: FuzzRequest, res: FuzzResponse, opts: { knownBug?: boolean } = {}): string[] {
  const problems: string[] = [];
  const def = routes[req.route];
  if (res.status >= 500 && !opts.knownBug) problems.push(`${res.status}: a 5xx for bad input`);
  const json = parseJson(res.body);

  if (res.status >= 400 && !opts.knownBug) {
    const parsed = ErrorBody.safeParse(json);
    if (!parsed.success) {
      problems.push(`${res.status} without the contract's ErrorBody: ${res.body.slice(0, 300)}`);
    } else {
      const { code, request_id } = parsed.data.error;
      if (ERROR_STATUS[code] !== res.status) problems.push(`status ${res.status} with code ${code}, which the contract pairs with ${ERROR_STATUS[code]}`);
      if (request_id !== res.headers[HEADERS.requestId]) problems.push(`error request_id ${request_id} differs from the ${HEADERS.requestId} header ${String(res.headers[HEADERS.requestId])}`);
    }
  } else if (res.status < 400 && req.matchesRoute) {
    const schema = (def.responses as Record<number, { safeParse(v: unknown): { success: boolean; error?: unknown } }>)[res.status];
    if (!schema) problems.push(`status ${res.status} is not among the route's responses (${Object.keys(def.responses).join(", ")})`);
    else if (!schema.safeParse(json).success) problems.push(`${res.status} body does not match the contract: ${res.body.slice(0, 300)}`);
  }

  if (def.auth !== "none" && req.matchesRoute) {
    if (req.auth !== "valid" && res.status !== 401) problems.push(`auth ${req.auth}: expected 401 unauthorized, got ${res.status}`);
    if (req.auth === "valid" && res.status === 401) problems.push("a valid key was refused");
  }

  // The SSRF guard: a job pointing at a private address is never accepted while private URLs are off.
  if (req.route === "createJob" && req.matchesRoute && res.status < 300 && req.body && typeof req.body === "object") {
    for (const field of URL_FIELDS) {
      const value = (req.body as Record<string, unknown>)[field];
      if (isPrivateTarget(value)) problems.push(`accepted ${field}=${String(value)} with ALLOW_PRIVATE_NETWORK_URLS=false`);
    }
  }
  return problems;
}
