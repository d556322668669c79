import { staticResolver } from "@fleet/egress";
import { describe, expect, test } from "vitest";
import { ApiError } from "./api-error.js";
import { assertPublicUrl } from "./url-guard.js";

describe("assertPublicUrl", () => {
  const resolve = staticResolver({
    "cdn.fleet.internal": ["93.184.216.34"],
    "intranet.fleet.internal": ["93.184.216.34", "10.0.0.7"],
  });

  async function codeOf(url: string): Promise<string | null> {
    try {
      await assertPublicUrl("video_url", url, resolve);
      return null;
    } catch (err) {
      return err instanceof ApiError ? err.code : "unexpected";
    }
  }

  test("public hosts pass", async () => {
    expect(await codeOf("https://cdn.fleet.internal/v.mp4")).toBeNull();
    expect(await codeOf("http://93.184.216.34/v.mp4")).toBeNull();
    expect(await codeOf("http://[2606:4700:4700::1111]/v.mp4")).toBeNull();
  });

  test("loopback, private and link-local literals are refused, in every spelling", async () => {
    for (const url of [
      "http://localhost/v.mp4",
      "http://localhost./v.mp4",
      "http://api.localhost/v.mp4",
      "http://127.0.0.1:8080/v.mp4",
      "http://2130706433/v.mp4",
      "http://0x7f.1/v.mp4",
      "http://[::1]/v.mp4",
      "http://[::ffff:127.0.0.1]/v.mp4",
      "http://[::7f00:1]/v.mp4",
      "http://[::ffff:0:7f00:1]/v.mp4",
      "http://[64:ff9b::a9fe:a9fe]/v.mp4",
      "http://[64:ff9b:1::a9fe:a9fe]/v.mp4",
      "http://[2002:a9fe:a9fe::]/v.mp4",
      "http://[fec0::1]/v.mp4",
      "http://169.254.169.254/latest/meta-data",
      "http://10.0.0.5/v.mp4",
    ]) {
      expect(await codeOf(url), url).toBe("url_not_allowed");
    }
  });

  test("a hostname with any private address among its answers is refused", async () => {
    expect(await codeOf("https://intranet.fleet.internal/v.mp4")).toBe("url_not_allowed");
    expect(await codeOf("https://intranet.fleet.internal./v.mp4")).toBe("url_not_allowed");
  });

  test("a hostname that does not resolve passes (it reaches nothing; every connection is checked again)", async () => {
    expect(await codeOf("https://nowhere.fleet.internal/v.mp4")).toBeNull();
  });
});
