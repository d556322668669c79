import { describe, expect, it } from "vitest";
import { signWebhook, verifyWebhook } from "./webhook-signature.js";

/**
 * Known answers computed outside this code (Python's hmac/hashlib over UTF-8 `"<t>.<body>"`), so a
 * change of the signing scheme fails here instead of passing by round-tripping through itself.
 * Receivers in other languages can check their verifier against the same lines.
 */
const VECTORS = [
  {
    secret: "fleet-known-answer-secret-0001",
    body: '{"event":"job.succeeded","delivered_at":"2026-11-30T02:00:00.000Z","job":{"id":"7b0c9a52-7e0e-4c1e-8f6a-111111111111","status":"succeeded"}}',
    t: 1796000000,
    header: "t=1796000000,v1=1718447c1acb7d95a48bd1b9fc1e9a2eebc23f831113f7393fbe0a03f0f573d5",
  },
  {
    secret: "s3crét-ünicode-key",
    body: '{"note":"café ✓"}',
    t: 1700000000,
    header: "t=1700000000,v1=d675598298651cae195daf28baf8cad6424ba99085e1e6dda93f0c8be764ccfa",
  },
  {
    secret: "short-secret-16b",
    body: "",
    t: 0,
    header: "t=0,v1=b9720078cfada8eeed34ff191e576a1d14851316d9398f5e1b4779589945dea1",
  },
] as const;

describe("webhook signatures", () => {
  it.each(VECTORS)("signs $t with the exact known header", ({ secret, body, t, header }) => {
    expect(signWebhook(secret, body, t)).toBe(header);
  });

  it.each(VECTORS)("verifies the known header at its own time and refuses it with another secret, body or time", ({ secret, body, t, header }) => {
    expect(verifyWebhook(secret, body, header, t)).toBe(true);
    expect(verifyWebhook(`${secret}x`, body, header, t)).toBe(false);
    expect(verifyWebhook(secret, `${body} `, header, t)).toBe(false);
    expect(verifyWebhook(secret, body, header, t + 301)).toBe(false);
    expect(verifyWebhook(secret, body, header.replace(`t=${t}`, `t=${t + 1}`), t)).toBe(false);
  });
});
