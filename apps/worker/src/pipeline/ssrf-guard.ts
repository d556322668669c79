import dns from "node:dns";
import { isPrivateNetworkAddress } from "@fleet/contract";

/** Loopback/private/link-local/reserved: the one list both apps use (see @fleet/contract). */
export const isBlockedAddress = isPrivateNetworkAddress;

export class UrlNotAllowedError extends Error {
  override readonly name = "UrlNotAllowedError";
  readonly code = "ERR_FLEET_URL_NOT_ALLOWED";
  constructor(readonly host: string, readonly address: string) {
    super(`${host} resolves to ${address}, a loopback/private/link-local address (set ALLOW_PRIVATE_NETWORK_URLS=true to allow)`);
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/**
 * A `lookup` for net.connect that refuses blocked addresses at connect time, so the address
 * checked is the address used (no DNS-rebinding gap between a check and the request).
 */
export function guardedLookup(hostname: string, options: dns.LookupOptions, callback: LookupCallback): void {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const bad = addresses.find((a) => isBlockedAddress(a.address));
    if (bad) return callback(new UrlNotAllowedError(hostname, bad.address), []);
    const first = addresses[0];
    if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: "ENOTFOUND" }), []);
    if (options.all) callback(null, addresses);
    else callback(null, first.address, first.family);
  });
}

/** True when `err` (or its cause chain) is the guard's refusal. */
export function findUrlNotAllowed(err: unknown): UrlNotAllowedError | null {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof UrlNotAllowedError) return e;
  }
  return null;
}
