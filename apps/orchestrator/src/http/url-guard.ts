import { assertPublicUrlHost, findEgressRefusal, systemResolve, type Resolve } from "@fleet/egress";
import { ApiError } from "./api-error.js";

/** Resolver is injectable so tests can point a hostname at any address without real DNS. */
export type ResolveHost = Resolve;
export const resolveHost: ResolveHost = systemResolve;

/**
 * Refuses URLs whose host is, or resolves to, an address that is not public (the policy of
 * @fleet/egress, the same one the worker and the webhook sender apply when they connect). A name
 * that does not resolve passes: it cannot reach anything, and every connection is checked again.
 */
export async function assertPublicUrl(field: string, value: string, resolve: ResolveHost = resolveHost): Promise<void> {
  try {
    await assertPublicUrlHost(new URL(value), { resolve });
  } catch (err) {
    const refusal = findEgressRefusal(err);
    if (!refusal) throw err;
    throw new ApiError("url_not_allowed", `${field} points at a loopback or private network address`, [
      { path: `body.${field}`, message: `${refusal.address} is not a public address (${refusal.range})` },
    ]);
  }
}
