import { describe, expect, test } from "vitest";
import { classifyOriginalError, isInputFault } from "./classify-failure.js";

/** What the original buffer loop puts in `error`: repr() of its httpx exception. */
const bufferLoopRepr = (status: number, reason: string) =>
  `HTTPStatusError("${status < 500 ? "Client" : "Server"} error '${status} ${reason}' for url 'http://localhost:8000/generate'\\nFor more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/${status}")`;

describe("classifying the original workers' error strings", () => {
  test.each([
    ["the buffer loop's 422 (media or download problem)", bufferLoopRepr(422, "Unprocessable Entity"), "media_error", false, true],
    ["the buffer loop's 500 (processing error)", bufferLoopRepr(500, "Internal Server Error"), "processing_error", true, false],
    ["a /generate that never answered", "ReadTimeout('')", "processing_error", true, false],
    ["a /generate that was down", "ConnectError('[Errno 111] Connection refused')", "processing_error", true, false],
    ["no face in the avatar video", "RuntimeError('No face detected in the first 50 frames')", "media_error", false, true],
    ["a failed download described in words", "download failed (url=http://10.0.0.9/a.mp4, status=503)", "download_error", true, true],
    ["something unexplained", "KeyError('video_url')", "unknown_error", true, false],
    ["nothing at all", "", "unknown_error", true, false],
  ])("%s", (_name, text, type, retryable, inputFault) => {
    const info = classifyOriginalError(text);
    expect([info.error_type, info.retryable]).toEqual([type, retryable]);
    expect(isInputFault(info)).toBe(inputFault);
  });

  test("the main-tier loop's quoted /generate body is taken as the original itself classified it", () => {
    const body = { status: "failed", error_type: "media_error", error_message: "unreachable (url=http://10.0.0.9/v.mp4, status=404)", stage: "download", details: {}, retryable: false, stage_times: {} };
    const info = classifyOriginalError(`HTTP 422: ${JSON.stringify(body)}`);
    expect(info).toMatchObject({ error_type: "media_error", stage: "download", message: body.error_message, retryable: false, details: { http_status: 422 } });
    expect(isInputFault(info)).toBe(true);

    const crash = { ...body, error_type: "processing_error", error_message: "CUDA out of memory", stage: "inference", retryable: true };
    const crashInfo = classifyOriginalError(`HTTP 500: ${JSON.stringify(crash)}`);
    expect(crashInfo).toMatchObject({ error_type: "processing_error", stage: "inference", retryable: true });
    expect(isInputFault(crashInfo)).toBe(false);

    // FastAPI's own 422 for a body it could not parse (a bad URL): the input's fault.
    const invalid = classifyOriginalError(`HTTP 422: {"detail":[{"loc":["body","video_url"],"msg":"invalid or missing URL scheme"}]}`);
    expect([invalid.error_type, invalid.retryable, isInputFault(invalid)]).toEqual(["media_error", false, true]);
  });
});

describe("Fleet workers' structured failures", () => {
  test.each([
    ["a media error at any stage", { error_type: "media_error", stage: "preprocessing" }, true],
    ["a typed download error", { error_type: "download_error", stage: "download" }, true],
    ["a download that kept failing", { error_type: "processing_error", stage: "download", details: { status_code: 503 } }, true],
    ["a download that filled this box's disk", { error_type: "processing_error", stage: "download", details: { code: "ENOSPC" } }, false],
    ["an engine crash", { error_type: "processing_error", stage: "inference" }, false],
    ["a storage failure", { error_type: "processing_error", stage: "upload" }, false],
    ["an unexpected error while downloading", { error_type: "unknown_error", stage: "download" }, false],
  ] as const)("%s", (_name, partial, inputFault) => {
    expect(isInputFault({ message: "x", retryable: true, details: null, ...partial })).toBe(inputFault);
  });
});

describe("a Fleet worker's own word on whose fault a failure is", () => {
  test("wins over what its type and stage would suggest, either way", () => {
    const base = { message: "x", retryable: true, details: null };
    expect(isInputFault({ ...base, error_type: "processing_error", stage: "inference", fault: "job" })).toBe(true);
    expect(isInputFault({ ...base, error_type: "download_error", stage: "download", fault: "worker" })).toBe(false);
    expect(isInputFault({ ...base, error_type: "processing_error", stage: "download", details: { code: "ENOSPC" } })).toBe(false);
  });
});
