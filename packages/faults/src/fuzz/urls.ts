import fc from "fast-check";
import { weirdString } from "./garbage.js";

/** Reachable public targets (by the fuzz DNS table, or literal public addresses, or names that do not resolve). */
const PUBLIC_URLS = [
  "https://media.fuzz.internal/avatar.mp4",
  "http://cdn.fuzz.internal/voice.wav",
  "https://does-not-resolve.fuzz.internal/a.mp4",
  "https://93.184.216.34/x.mp4",
  "https://[2606:2800:220:1:248:1893:25c8:1946]/v.mp4",
  "https://media.fuzz.internal/a%20b.mp4?sig=abc&x=%00#frag",
  "https://media.fuzz.internal./fqdn.mp4",
  "https://[64:ff9b::5db8:d822]/nat64-public.mp4",
] as const;

/** Loopback, private, link-local, CGNAT and unique-local targets, spelled every way a URL parser accepts. */
const PRIVATE_URLS = [
  "http://127.0.0.1/a.mp4",
  "http://127.1/a.mp4",
  "http://0x7f000001/a.mp4",
  "http://2130706433/a.mp4",
  "http://0.0.0.0/a.mp4",
  "http://localhost:8080/a.mp4",
  "http://LOCALHOST/a.mp4",
  "http://db.localhost/a.mp4",
  "http://10.0.0.8/v.mp4",
  "http://172.16.5.4/v.mp4",
  "http://192.168.1.20/v.mp4",
  "http://100.64.0.1/v.mp4",
  "http://169.254.169.254/latest/meta-data/",
  "http://[::1]/a.mp4",
  "http://[::ffff:127.0.0.1]/a.mp4",
  "http://[fd00::1]/a.mp4",
  "http://[fe80::1]/a.mp4",
  "http://[::7f00:1]/a.mp4",
  "http://[::ffff:0:7f00:1]/a.mp4",
  "http://[::ffff:7f00:1]/a.mp4",
  "http://[64:ff9b::a9fe:a9fe]/latest",
  "http://[64:ff9b:1::a9fe:a9fe]/latest",
  "http://[2002:a9fe:a9fe::]/latest",
  "http://[fec0::1]/a.mp4",
  "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/a.mp4",
  "http://[ff02::1]/a.mp4",
  "http://localhost./a.mp4",
  "http://localhost../a.mp4",
  "http://127.0.0.1./a.mp4",
  "http://internal.fuzz.internal/a.mp4",
  "http://internal.fuzz.internal./a.mp4",
  "http://metadata.fuzz.internal/latest",
  "http://rebind.fuzz.internal/a.mp4",
  "http://v6-loopback.fuzz.internal/a.mp4",
  "http://user:pw@127.0.0.1:9000/a.mp4",
] as const;

/** Not absolute http(s) URLs at all. */
const INVALID_URLS = [
  "ftp://media.fuzz.internal/a.mp4",
  "file:///etc/passwd",
  "javascript:alert(1)",
  "data:video/mp4;base64,AAAA",
  "gopher://127.0.0.1:6379/_FLUSHALL",
  "not a url",
  "//media.fuzz.internal/a.mp4",
  "http://",
  "http://me dia.fuzz.internal/a.mp4",
  "http://[::1/a.mp4",
  `https://${"a".repeat(3_000)}.fuzz.internal/a.mp4`,
  "https://media.fuzz.internal/\u0000.mp4",
] as const;

const privateSet = new Set<string>(PRIVATE_URLS);

export function isPrivateTarget(value: unknown): boolean {
  return typeof value === "string" && privateSet.has(value);
}

export const urlArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...PUBLIC_URLS) },
  { weight: 4, arbitrary: fc.constantFrom(...PRIVATE_URLS) },
  { weight: 2, arbitrary: fc.constantFrom(...INVALID_URLS) },
  { weight: 1, arbitrary: fc.webUrl() },
  { weight: 1, arbitrary: weirdString },
);
