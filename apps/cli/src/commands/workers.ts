import type { WorkerView } from "@fleet/contract";
import type { Command } from "../command.js";
import { formatDuration } from "../format/duration.js";
import { formatTable, truncate } from "../format/table.js";

function statusCell(w: WorkerView): string {
  const notes: string[] = [];
  if (w.drain_requested && w.status !== "draining") notes.push("drain requested");
  if (w.quarantined_until !== null && Date.parse(w.quarantined_until) > Date.now()) notes.push("quarantined");
  return notes.length === 0 ? w.status : `${w.status} (${notes.join(", ")})`;
}

function gpuCell(w: WorkerView): string {
  const name = w.system?.gpu_name;
  const gpu = typeof name === "string" && name !== "" ? name : null;
  if (w.gpu_class !== null && gpu !== null && gpu !== w.gpu_class) return `${w.gpu_class} (${gpu})`;
  return w.gpu_class ?? gpu ?? "-";
}

function engineCell(w: WorkerView): string {
  const e = w.engine;
  if (e === null) return "-";
  const driver = typeof e.driver === "string" ? e.driver : "?";
  const state = typeof e.state === "string" ? e.state : "?";
  // The CPU development engine makes videos without lip movement; never let that pass unnoticed.
  const noLipSync = e.lip_sync === false ? ", no lip-sync" : "";
  return `${driver} ${state}${noLipSync}`;
}

/** The tier, and whether the worker speaks the original Python workers' protocol. */
function tierCell(w: WorkerView): string {
  return w.protocol === "original" ? `${w.tier} (original)` : w.tier;
}

/** One row per worker: the operators' `SELECT ... FROM buffer_workers` without psql. */
export function workersTable(workers: readonly WorkerView[]): string {
  const rows = workers.map((w) => [
    w.worker_id,
    statusCell(w),
    tierCell(w),
    w.online ? "yes" : "NO",
    w.heartbeat_age_sec === null ? "never" : `${formatDuration(w.heartbeat_age_sec)} ago`,
    gpuCell(w),
    `${w.running.length}/${w.capacity}`,
    engineCell(w),
    w.error === null ? "" : truncate(w.error, 60),
  ]);
  return formatTable(["WORKER", "STATUS", "TIER", "ONLINE", "HEARTBEAT", "GPU", "RUNNING", "ENGINE", "ERROR"], rows);
}

export const workersCommand: Command = {
  name: "workers",
  summary: "List workers: status, tier, online, heartbeat age, GPU, running jobs",
  usage: "fleet workers [--json]",
  options: {},
  async run({ client, io, json }) {
    const { workers } = await client.call("listWorkers");
    if (json) {
      io.stdout.write(JSON.stringify(workers, null, 2) + "\n");
      return 0;
    }
    if (workers.length === 0) {
      io.stdout.write("No worker has sent a heartbeat yet.\n");
      return 0;
    }
    io.stdout.write(workersTable(workers));
    const online = workers.filter((w) => w.online).length;
    io.stdout.write(`\n${online} of ${workers.length} online\n`);
    return 0;
  },
};
