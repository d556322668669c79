import type { Dispatcher } from "undici";

export interface JsonResponse {
  statusCode: number;
  /** Parsed body, or undefined when it was not JSON. */
  json: unknown;
  text: string;
}

/**
 * One JSON request on a dispatcher, body always read to the end (undici keeps a socket busy
 * until it is). Network errors and timeouts throw; every HTTP status resolves.
 */
export async function requestJson(
  dispatcher: Dispatcher,
  opts: { method: "GET" | "POST" | "PUT"; path: string; body?: unknown; timeoutMs: number; signal?: AbortSignal },
): Promise<JsonResponse> {
  const timeout = AbortSignal.timeout(opts.timeoutMs + 1_000);
  const res = await dispatcher.request({
    method: opts.method,
    path: opts.path,
    headers: opts.body === undefined ? { accept: "application/json" } : { "content-type": "application/json", accept: "application/json" },
    body: opts.body === undefined ? null : JSON.stringify(opts.body),
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    signal: opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout,
  });
  const text = await res.body.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { statusCode: res.statusCode, json, text };
}
