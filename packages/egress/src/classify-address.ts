import { isIP } from "node:net";
import ipaddr from "ipaddr.js";

export type AddressVerdict = { public: true; range: "unicast" } | { public: false; range: string };

/** Global unicast (2000::/3): the only IPv6 space that is routed on the public internet. */
const GLOBAL_UNICAST = ipaddr.parseCIDR("2000::/3");
/** IPv4-compatible (deprecated, `::a.b.c.d`): `[::7f00:1]` reaches 127.0.0.1 on some stacks. */
const IPV4_COMPATIBLE = ipaddr.parseCIDR("::/96");
/** NAT64's well-known prefix: a gateway translates it to the IPv4 address in the low 32 bits. */
const NAT64_WELL_KNOWN = ipaddr.parseCIDR("64:ff9b::/96");

/**
 * Whether an address may be the target of a client-chosen URL. Judged by ranges, not text: the
 * same address has many spellings (`::ffff:7f00:1`, `::ffff:127.0.0.1`), and every form that
 * carries an IPv4 address (mapped, translated, NAT64, 6to4) is judged by that IPv4 address.
 * Anything that is not exactly one IP address is refused.
 */
export function classifyAddress(address: string): AddressVerdict {
  if (isIP(address) === 0) return { public: false, range: "not_an_address" };
  const parsed = ipaddr.parse(address);
  if (parsed.kind() === "ipv4") {
    const range = parsed.range();
    return range === "unicast" ? { public: true, range } : { public: false, range };
  }
  return classifyIpv6(parsed as ipaddr.IPv6);
}

function classifyIpv6(address: ipaddr.IPv6): AddressVerdict {
  const range = address.range();
  const parts = address.parts;
  switch (range) {
    case "ipv4Mapped":
    case "rfc6145":
      return viaEmbedded(range, parts[6] ?? 0, parts[7] ?? 0);
    case "rfc6052":
      // 64:ff9b:1::/48 is for local NAT64 deployments: whatever it reaches is someone's network.
      return address.match(NAT64_WELL_KNOWN) ? viaEmbedded(range, parts[6] ?? 0, parts[7] ?? 0) : { public: false, range: "nat64LocalUse" };
    case "6to4":
      return viaEmbedded(range, parts[1] ?? 0, parts[2] ?? 0);
    case "unicast":
      if (address.match(IPV4_COMPATIBLE)) return { public: false, range: "ipv4Compatible" };
      if (!address.match(GLOBAL_UNICAST)) return { public: false, range: "notGlobalUnicast" };
      return { public: true, range };
    default:
      // Teredo, site-local, unique-local, link-local, multicast, documentation, ORCHID, …
      return { public: false, range };
  }
}

function viaEmbedded(outer: string, high: number, low: number): AddressVerdict {
  const v4 = new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
  const range = v4.range();
  return range === "unicast" ? { public: true, range } : { public: false, range: `${outer}(${range})` };
}

/** True for an address a client-chosen URL must not reach. */
export function isNonPublicAddress(address: string): boolean {
  return !classifyAddress(address).public;
}
