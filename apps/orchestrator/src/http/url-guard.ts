import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { isPrivateNetworkAddress } from "@fleet/contract";
import { ApiError } from "./api-error.js";

/**
 * Targets a worker must never be sent to fetch from (or the orchestrator to POST a webhook to);
 * the list lives in the contract so the worker refuses exactly the same addresses. Callers pass
 * IP addresses only (a literal host, or what a name resolved to).
 */
export const isPrivateAddress = isPrivateNetworkAddress;

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
