import { lookup } from "node:dns/promises";

/** Every address a name resolves to. Injectable so tests never ask real DNS about any name. */
export type Resolve = (hostname: string) => Promise<string[]>;

/** The system resolver (getaddrinfo: /etc/hosts, then DNS), every address in its order. */
export const systemResolve: Resolve = async (hostname) => {
  const results = await lookup(hostname, { all: true, verbatim: true });
  return results.map((r) => r.address);
};

/**
 * A resolver answering from a fixed table, like a hosts file; unknown names fail as `ENOTFOUND`.
 * Tests use it so that no name ever leaves the machine.
 */
export function staticResolver(table: Record<string, string[]>): Resolve {
  const entries = new Map(Object.entries(table).map(([name, addresses]) => [normalizeHostname(name), addresses]));
  return (hostname) => {
    const found = entries.get(normalizeHostname(hostname));
    if (found) return Promise.resolve([...found]);
    return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND", hostname }));
  };
}

/** Lower case, without IPv6 brackets and without the trailing dot(s) of a fully-qualified name. */
export function normalizeHostname(hostname: string): string {
  return hostname.replace(/^\[|\]$/g, "").replace(/\.+$/, "").toLowerCase();
}
