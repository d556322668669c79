import { createHash, randomBytes } from "node:crypto";

/**
 * sha256 hex of a credential. Generated keys and tokens carry 256 random bits, so a slow password
 * hash would add latency to every request and no protection.
 */
export function hashCredential(value: string): string {
  return createHash("sha256").update(value).digest("hex");
}

/**
 * A new credential `<kind><8 hex>_<43 base64url>`; the part before the second `_` is its prefix,
 * stored in clear so an operator can tell keys apart, and never enough to authenticate.
 */
export function generateCredential(kind: string): { value: string; prefix: string } {
  const prefix = `${kind}${randomBytes(4).toString("hex")}`;
  return { value: `${prefix}_${randomBytes(32).toString("base64url")}`, prefix };
}

/** For keys an operator chose (PUBLIC_API_KEYS): shown as part of their hash, never of the key. */
export function prefixOfChosenKey(keyHash: string): string {
  return `sha256:${keyHash.slice(0, 12)}`;
}
