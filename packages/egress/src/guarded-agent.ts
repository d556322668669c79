import type { LookupAddress } from "node:dns";
import { isIP, type LookupFunction } from "node:net";
import { Agent, buildConnector } from "undici";
import { assertPublicAddresses } from "./check-target.js";
import type { EgressRefusedError } from "./egress-refused-error.js";
import { normalizeHostname, type Resolve } from "./resolve.js";

export interface GuardedAgentOptions {
  /** ALLOW_PRIVATE_NETWORK_URLS: no checks at all (a LAN deployment, tests against 127.0.0.1). */
  allowPrivate: boolean;
  resolve: Resolve;
  connectTimeoutMs: number;
  keepAliveTimeoutMs?: number;
  connections?: number;
}

/**
 * The `lookup` net.connect uses: resolve with the policy's resolver, refuse unless every address
 * is public, and hand back only those checked addresses, so the socket connects to an address
 * that was checked (no gap between a check and a second DNS answer). With `allowPrivate` it only
 * resolves, so an injected resolver is still the only one asked.
 */
export function createGuardedLookup(resolve: Resolve, policy: { allowPrivate?: boolean } = {}): LookupFunction {
  const check = policy.allowPrivate ? (_host: string, addresses: string[]) => addresses : assertPublicAddresses;
  return (hostname, options, callback) => {
    resolve(hostname).then(
      (resolved) => {
        let addresses: LookupAddress[];
        try {
          addresses = check(hostname, resolved).map((address) => ({ address, family: isIP(address) }));
        } catch (err) {
          return callback(err as Error, options.all ? [] : "", 0);
        }
        const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
        const first = wanted[0];
        if (!first) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" }), options.all ? [] : "", 0);
        if (options.all) callback(null, wanted);
        else callback(null, first.address, first.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, options.all ? [] : "", 0),
    );
  };
}

/**
 * The one way to open a connection to a client-chosen URL: an undici Agent whose connector
 * checks IP-literal hosts itself (net.connect never calls `lookup` for them) and resolves names
 * through the guarded lookup. Downloads and webhooks both use it; redirects are connections too.
 */
export function createGuardedAgent(options: GuardedAgentOptions): Agent {
  const common = {
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 4_000,
    ...(options.connections !== undefined ? { connections: options.connections } : {}),
  };
  // Names still go through the injected resolver when private targets are allowed, only unchecked.
  if (options.allowPrivate) {
    return new Agent({ ...common, connect: { timeout: options.connectTimeoutMs, lookup: createGuardedLookup(options.resolve, { allowPrivate: true }) } });
  }
  const connectChecked = buildConnector({ timeout: options.connectTimeoutMs, lookup: createGuardedLookup(options.resolve) });
  const connect: buildConnector.connector = (connectOptions, callback) => {
    const host = normalizeHostname(connectOptions.hostname);
    if (isIP(host) !== 0) {
      try {
        assertPublicAddresses(host, [host]);
      } catch (err) {
        return callback(err as EgressRefusedError, null);
      }
    }
    connectChecked(connectOptions, callback);
  };
  return new Agent({ ...common, connect });
}
