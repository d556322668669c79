import type { Principal } from "../auth/principal.js";
import { ApiError } from "./api-error.js";

/**
 * A worker token acts only as its own worker; the shared internal key acts as anyone (the weaker
 * mode the original workers use). Checked before any row is touched.
 */
export function assertActsAs(principal: Principal, workerId: string, what: string): void {
  if (principal.kind === "worker" && principal.workerId !== workerId) {
    throw new ApiError("worker_identity_mismatch", `this worker token belongs to ${principal.workerId}, not to ${what}`);
  }
}
