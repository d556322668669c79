import { describe, expect, test } from "vitest";
import { ApiError } from "./api-error.js";
import { assertPublicUrl, isPrivateAddress } from "./url-guard.js";

describe("isPrivateAddress", () => {
  test.each([
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "::1",
    "::",
    "fd00::1",
    "fe80::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
  ])("%s is private", (address) => {
    expect(isPrivateAddress(address)).toBe(true);
  });

  test.each(["8.8.8.8", "172.32.0.1", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8"])("%s is public", (address) => {
    expect(isPrivateAddress(address)).toBe(false);
  });
});

describe("assertPublicUrl", () => {
  const resolveTo = (addresses: string[]) => () => Promise.resolve(addresses);

  async function codeOf(url: string, addresses: string[] = ["93.184.216.34"]): Promise<string | null> {
    try {
      await assertPublicUrl("video_url", url, resolveTo(addresses));
      return null;
    } catch (err) {
      return err instanceof ApiError ? err.code : "unexpected";
    }
  }

  test("public hosts pass", async () => {
    expect(await codeOf("https://cdn.example.com/v.mp4")).toBeNull();
    expect(await codeOf("http://93.184.216.34/v.mp4")).toBeNull();
  });

  test("loopback, private and link-local literals are refused, in every spelling", async () => {
    for (const url of [
      "http://localhost/v.mp4",
      "http://api.localhost/v.mp4",
      "http://127.0.0.1:8080/v.mp4",
      "http://2130706433/v.mp4",
      "http://0x7f.1/v.mp4",
      "http://[::1]/v.mp4",
      "http://[::ffff:127.0.0.1]/v.mp4",
      "http://169.254.169.254/latest/meta-data",
      "http://10.0.0.5/v.mp4",
    ]) {
      expect(await codeOf(url), url).toBe("url_not_allowed");
    }
  });

  test("a hostname that resolves to a private address is refused", async () => {
    expect(await codeOf("https://internal.example.com/v.mp4", ["93.184.216.34", "10.0.0.7"])).toBe("url_not_allowed");
  });

  test("a hostname that does not resolve passes (it reaches nothing; the worker re-checks)", async () => {
    await expect(
      assertPublicUrl("video_url", "https://nowhere.invalid/v.mp4", () => Promise.reject(new Error("ENOTFOUND"))),
    ).resolves.toBeUndefined();
  });
});
