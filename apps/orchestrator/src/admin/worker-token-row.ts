import type { WorkerTokenView } from "@fleet/contract";
import { toIso, toIsoOrNull } from "../views/timestamps.js";

export interface WorkerTokenRow {
  id: string;
  worker_id: string;
  prefix: string;
  created_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

export function toWorkerTokenView(row: WorkerTokenRow): WorkerTokenView {
  return {
    id: row.id,
    worker_id: row.worker_id,
    prefix: row.prefix,
    created_at: toIso(row.created_at),
    revoked_at: toIsoOrNull(row.revoked_at),
    last_used_at: toIsoOrNull(row.last_used_at),
  };
}
