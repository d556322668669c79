import type { ApiKeyView } from "@fleet/contract";
import { sql } from "drizzle-orm";
import { toIso, toIsoOrNull } from "../views/timestamps.js";

/** An api_keys row joined with its client, as the admin queries return it. */
export interface ApiKeyRow {
  id: string;
  prefix: string;
  client_id: string;
  client_name: string;
  bootstrap: boolean;
  created_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

/** The select list of an ApiKeyRow over `api_keys k join clients c`. */
export const API_KEY_COLUMNS = sql`k.id, k.prefix, k.client_id, c.name as client_name, c.bootstrap, k.created_at, k.revoked_at, k.last_used_at`;

export function toApiKeyView(row: ApiKeyRow): ApiKeyView {
  return {
    id: row.id,
    prefix: row.prefix,
    client_id: row.client_id,
    client_name: row.client_name,
    bootstrap: row.bootstrap,
    created_at: toIso(row.created_at),
    revoked_at: toIsoOrNull(row.revoked_at),
    last_used_at: toIsoOrNull(row.last_used_at),
  };
}
