import { createGuardedAgent, type Resolve } from "@fleet/egress";
import type { Agent } from "undici";

/**
 * The undici agent for webhooks: the same guarded connector as the worker's downloads. Unless
 * private targets are allowed, every connection is checked where it is made (IP literals too),
 * so DNS that changed after the job was accepted (rebinding) cannot aim a delivery inside.
 */
export function createWebhookDispatcher(options: { allowPrivate: boolean; timeoutMs: number; resolve: Resolve }): Agent {
  return createGuardedAgent({
    allowPrivate: options.allowPrivate,
    resolve: options.resolve,
    connectTimeoutMs: options.timeoutMs,
    keepAliveTimeoutMs: 10_000,
    connections: 8,
  });
}
