import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { createB2Storage } from "./b2-storage.js";
import { createLocalStorage } from "./local-storage.js";
import type { OutputStorage } from "./output-storage.js";

/** STORAGE → store. `defaultBaseUrl` is read lazily: the HTTP port is known only after listen. */
export function createStorage(config: Config, log: Logger, defaultBaseUrl: () => string): OutputStorage {
  const s = config.storage;
  if (s.kind === "b2") return createB2Storage({ settings: s.b2, log: log.child({ component: "b2" }), version: config.version });
  return createLocalStorage({ dir: s.dir, baseUrl: () => s.baseUrl ?? defaultBaseUrl() });
}
