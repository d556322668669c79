import { HEADERS, signWebhook, type WebhookPayload } from "@fleet/contract";
import { request, type Dispatcher } from "undici";

/** A failure carries `error`, the text stored as the delivery's last_error, and `err`, the same as an Error for log lines. */
export type SendResult = { ok: true; statusCode: number } | { ok: false; statusCode: number | null; error: string; err: Error };

/**
 * One POST. Always consumes the response body (undici keeps the socket otherwise) and never
 * follows redirects (a redirect to an internal address would dodge the URL check).
 */
export async function sendWebhook(
  dispatcher: Dispatcher,
  url: string,
  payload: WebhookPayload,
  options: { secret: string | undefined; timeoutMs: number },
): Promise<SendResult> {
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": "fleet-orchestrator-webhooks",
    [HEADERS.webhookEvent]: payload.event,
  };
  if (options.secret) headers[HEADERS.webhookSignature] = signWebhook(options.secret, body, Math.floor(Date.now() / 1000));
  try {
    const response = await request(url, {
      method: "POST",
      body,
      headers,
      dispatcher,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    await response.body.dump();
    if (response.statusCode >= 200 && response.statusCode < 300) return { ok: true, statusCode: response.statusCode };
    const error = `HTTP ${response.statusCode}`;
    return { ok: false, statusCode: response.statusCode, error, err: new Error(error) };
  } catch (err) {
    const e = err as { code?: string; message?: string };
    const error = e.code ? `${e.code}: ${e.message ?? ""}` : String(e.message ?? err);
    return { ok: false, statusCode: null, error, err: err instanceof Error ? err : new Error(error) };
  }
}
