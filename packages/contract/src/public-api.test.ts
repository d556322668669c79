import { describe, expect, it } from "vitest";
import { CreateJobRequest, ListJobsQuery } from "./public-api.js";
import { verifyWebhook, signWebhook } from "./webhook-signature.js";
import { routes } from "./routes.js";
import { ERROR_STATUS, ErrorCode } from "./errors.js";

describe("the public API accepts what clients of the original send", () => {
  it("accepts the README's create body with webhook and metadata", () => {
    const body = {
      video_url: "https://files.catbox.moe/abc.mp4",
      audio_url: "https://files.catbox.moe/abc.wav",
      aspect_ratio: "9:16",
      resolution: "720p",
      webhook_url: "https://client.example/hook",
      metadata: { client_id: "c1", request_id: "r1" },
    };
    expect(CreateJobRequest.parse(body)).toMatchObject({ ...body, priority: 0, params: {} });
  });

  it.each([
    ["a non-http video_url", { video_url: "ftp://x/y.mp4", audio_url: "https://x/a.wav" }],
    ["a javascript: audio_url", { video_url: "https://x/v.mp4", audio_url: "javascript:alert(1)" }],
    ["a malformed aspect ratio", { video_url: "https://x/v.mp4", audio_url: "https://x/a.wav", aspect_ratio: "wide" }],
    ["a malformed resolution", { video_url: "https://x/v.mp4", audio_url: "https://x/a.wav", resolution: "big" }],
    ["a priority out of range", { video_url: "https://x/v.mp4", audio_url: "https://x/a.wav", priority: 1000 }],
    ["params that are not an object", { video_url: "https://x/v.mp4", audio_url: "https://x/a.wav", params: [1] }],
  ])("rejects a create body with %s", (_, body) => {
    expect(CreateJobRequest.safeParse(body).success).toBe(false);
  });

  it("bounds list limits", () => {
    expect(ListJobsQuery.safeParse({ limit: "0" }).success).toBe(false);
    expect(ListJobsQuery.parse({ limit: "10" }).limit).toBe(10);
  });
});

describe("the route table", () => {
  it("has unique method + path pairs", () => {
    const keys = Object.values(routes).map((r) => `${r.method} ${r.path}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("protects every /internal and /v1 route", () => {
    for (const r of Object.values(routes)) {
      if (r.path.startsWith("/internal/")) expect(r.auth, r.path).toBe("internal");
      if (r.path.startsWith("/v1/")) expect(r.auth, r.path).toBe("public");
    }
  });

  it("maps every error code to a 4xx or 5xx status", () => {
    for (const code of ErrorCode.options) expect(ERROR_STATUS[code]).toBeGreaterThanOrEqual(400);
  });
});

describe("webhook signatures", () => {
  it("verifies its own signature and refuses a tampered body or an old timestamp", () => {
    const header = signWebhook("s3cret", '{"a":1}', 1_000);
    expect(verifyWebhook("s3cret", '{"a":1}', header, 1_010)).toBe(true);
    expect(verifyWebhook("s3cret", '{"a":2}', header, 1_010)).toBe(false);
    expect(verifyWebhook("other", '{"a":1}', header, 1_010)).toBe(false);
    expect(verifyWebhook("s3cret", '{"a":1}', header, 5_000)).toBe(false);
  });
});
