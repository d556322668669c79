import { isIP } from "node:net";
import { classifyAddress } from "./classify-address.js";
import { EgressRefusedError } from "./egress-refused-error.js";
import { normalizeHostname, type Resolve } from "./resolve.js";

/** Names that mean "this machine" without asking any resolver. */
function isLocalhostName(name: string): boolean {
  return name === "localhost" || name.endsWith(".localhost");
}

/**
 * The one rule: a name is allowed only when EVERY address it resolves to is public. Dropping the
 * private ones and connecting to the rest would let a name that answers both (rebinding, split
 * DNS) reach the internal network on another try. Throws the refusal; returns the addresses.
 */
export function assertPublicAddresses(host: string, addresses: readonly string[]): string[] {
  for (const address of addresses) {
    const verdict = classifyAddress(address);
    if (!verdict.public) throw new EgressRefusedError(host, address, verdict.range);
  }
  return [...addresses];
}

export interface SubmitCheckOptions {
  resolve: Resolve;
  /** How long a slow resolver may hold a submission; past it the name passes (connect re-checks). */
  resolveTimeoutMs?: number;
}

/**
 * The check when a URL is accepted: its host must be a public address, or a name whose every
 * address is public. A name that does not resolve passes: it reaches nothing today, and every
 * connection is checked again by the guarded connector (DNS may change in between).
 */
export async function assertPublicUrlHost(url: URL, options: SubmitCheckOptions): Promise<void> {
  const host = normalizeHostname(url.hostname);
  if (host === "" || isLocalhostName(host)) throw new EgressRefusedError(url.hostname, url.hostname, "localhost");
  if (isIP(host) !== 0) {
    assertPublicAddresses(host, [host]);
    return;
  }
  let addresses: string[];
  try {
    addresses = await withTimeout(options.resolve(host), options.resolveTimeoutMs ?? 3_000);
  } catch {
    return;
  }
  assertPublicAddresses(host, addresses);
}

async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
