import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";
import { ApiError } from "./api-error.js";

/**
 * Targets a worker must never be sent to fetch from (or the orchestrator to POST a webhook to):
 * loopback, private, link-local (cloud metadata at 169.254.169.254), CGNAT, unique-local,
 * multicast and reserved ranges.
 */
const blocked = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) {
  blocked.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const) {
  blocked.addSubnet(net, prefix, "ipv6");
}

export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return blocked.check(mapped[1], "ipv4");
  const family = isIP(address);
  if (family === 4) return blocked.check(address, "ipv4");
  if (family === 6) return blocked.check(address, "ipv6");
  return false;
}

/** Resolver is injectable so tests can point a hostname at a private address. */
export type ResolveHost = (hostname: string) => Promise<string[]>;

export const resolveHost: ResolveHost = async (hostname) => {
  const results = await lookup(hostname, { all: true, verbatim: true });
  return results.map((r) => r.address);
};

/**
 * Refuses URLs whose host is, or resolves to, a private address. A name that does not resolve
 * passes: it cannot reach anything, and the worker re-checks the address it actually connects to.
 */
export async function assertPublicUrl(field: string, value: string, resolve: ResolveHost = resolveHost): Promise<void> {
  const url = new URL(value);
  const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const refuse = () => new ApiError("url_not_allowed", `${field} points at a loopback or private network address`, [
    { path: `body.${field}`, message: "loopback/private/link-local targets are not allowed" },
  ]);
  if (host === "localhost" || host.endsWith(".localhost")) throw refuse();
  if (isIP(host) !== 0) {
    if (isPrivateAddress(host)) throw refuse();
    return;
  }
  let addresses: string[];
  try {
    addresses = await withTimeout(resolve(host), 3000);
  } catch {
    return;
  }
  if (addresses.some(isPrivateAddress)) throw refuse();
}

async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("timeout")), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
