import type { Logger } from "pino";
import type { CredentialStore } from "../auth/credential-store.js";
import type { WakeSignal } from "@fleet/runtime";
import type { Config } from "../config.js";
import type { GaugeRefresher } from "../gauge-refresher.js";
import type { DatabaseHandle } from "../db/client.js";
import type { ApiKeyAuth } from "../http/api-key-auth.js";
import type { ResolveHost } from "../http/url-guard.js";
import type { Counters } from "../metrics.js";
import type { ClaimBatcher } from "../queue/claim-batcher.js";
import type { HeartbeatBatcher } from "../queue/heartbeat-batcher.js";
import type { SuccessBatcher } from "../queue/success-batcher.js";

/** Everything a route plugin needs, passed in explicitly (no module-level singletons). */
export interface RouteDeps {
  config: Config;
  db: DatabaseHandle;
  log: Logger;
  auth: ApiKeyAuth;
  credentials: CredentialStore;
  wake: WakeSignal;
  heartbeats: HeartbeatBatcher;
  claims: ClaimBatcher;
  successes: SuccessBatcher;
  counters: Counters;
  resolveHost: ResolveHost;
  gauges: GaugeRefresher;
}
