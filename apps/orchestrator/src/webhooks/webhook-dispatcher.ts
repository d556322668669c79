import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import type { LookupFunction } from "node:net";
import { Agent } from "undici";
import { isPrivateAddress } from "../http/url-guard.js";

/**
 * The undici agent for webhooks. Unless private targets are allowed, the address a hostname
 * resolves to at connect time is checked too, so DNS that changes after the job was accepted
 * (rebinding) cannot point a delivery at the internal network.
 */
export function createWebhookDispatcher(options: { allowPrivate: boolean; timeoutMs: number }): Agent {
  const guardedLookup: LookupFunction = (hostname, lookupOptions, callback) => {
    dnsLookup(hostname, { ...lookupOptions, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, "", 0);
      const allowed = addresses.filter((a) => !isPrivateAddress(a.address));
      const first = allowed[0];
      if (!first) {
        return callback(Object.assign(new Error(`${hostname} resolves to a private address`), { code: "EPRIVATE" }), "", 0);
      }
      if (lookupOptions.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, allowed);
      callback(null, first.address, first.family);
    });
  };
  return new Agent({
    connect: { timeout: options.timeoutMs, ...(options.allowPrivate ? {} : { lookup: guardedLookup }) },
    keepAliveTimeout: 10_000,
    connections: 8,
  });
}
