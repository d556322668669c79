import { WorkerId } from "@fleet/contract";
import type { WorkerView } from "@fleet/contract";
import { stringOption } from "../command.js";
import type { Command, CommandContext } from "../command.js";
import { formatDuration } from "../format/duration.js";
import { formatTable, truncate } from "../format/table.js";
import { UsageError } from "../usage-error.js";

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

/** The box a worker runs on: the hostname from its heartbeat's system facts (host networking shares it). */
function boxOf(w: WorkerView): string | null {
  const host = w.system?.hostname;
  return typeof host === "string" && host !== "" ? host : null;
}

/** Workers of one box next to each other, boxes by name, workers without a hostname last. */
function byBox(workers: readonly WorkerView[]): WorkerView[] {
  const key = (w: WorkerView) => `${boxOf(w) === null ? "1" : "0"}${boxOf(w) ?? ""}\u0000${w.worker_id}`;
  return [...workers].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/**
 * One line per box, so a half-dead multi-GPU box shows at a glance: `box gpu-a: 2 GPUs, 1 offline
 * (gpu-a-gpu1)`. A worker drives one GPU, so workers on a box count its GPUs.
 */
export function boxSummary(workers: readonly WorkerView[]): string {
  const boxes = new Map<string, WorkerView[]>();
  for (const w of byBox(workers)) {
    const box = boxOf(w) ?? "(no hostname reported)";
    boxes.set(box, [...(boxes.get(box) ?? []), w]);
  }
  const lines: string[] = [];
  for (const [box, ws] of boxes) {
    const offline = ws.filter((w) => !w.online);
    const gpus = `${ws.length} GPU${ws.length === 1 ? "" : "s"}`;
    const state = offline.length === 0 ? "all online" : `${offline.length} offline (${offline.map((w) => w.worker_id).join(", ")})`;
    lines.push(`box ${box}: ${gpus}, ${state}`);
  }
  return lines.join("\n") + "\n";
}

/** The tier, and whether the worker speaks the original Python workers' protocol. */
function tierCell(w: WorkerView): string {
  return w.protocol === "original" ? `${w.tier} (original)` : w.tier;
}

/** One row per worker: the operators' `SELECT ... FROM buffer_workers` without psql. */
function workersTable(workers: readonly WorkerView[]): string {
  const rows = byBox(workers).map((w) => [
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

const USAGE = "fleet workers [--json] | fleet workers enroll WORKER_ID | fleet workers revoke-token WORKER_ID [--prefix fw_...]";

function workerIdArgument(id: string | undefined): string {
  if (id === undefined) throw new UsageError(`usage: ${USAGE}`);
  if (!WorkerId.safeParse(id).success) throw new UsageError(`${id} is not a worker id`);
  return id;
}

/** `fleet workers enroll ID`: a token only this worker can use, printed once. */
async function enroll({ client, io, json }: CommandContext, workerId: string): Promise<number> {
  const issued = await client.call("enrollWorker", { params: { worker_id: workerId } });
  if (json) {
    io.stdout.write(JSON.stringify(issued, null, 2) + "\n");
    return 0;
  }
  io.stdout.write(
    [
      `worker ${workerId} enrolled (token ${issued.worker_token.prefix})`,
      "",
      "Shown only now; the orchestrator keeps only its hash. Put it in the worker's .env:",
      `  WORKER_TOKEN=${issued.token}`,
      "With it the worker may heartbeat, claim and report only as itself; give that box no INTERNAL_API_KEY.",
      `Revoke with: fleet workers revoke-token ${workerId} --prefix ${issued.worker_token.prefix}`,
      "",
    ].join("\n"),
  );
  return 0;
}

async function revokeToken({ client, io, json, values }: CommandContext, workerId: string): Promise<number> {
  const prefix = stringOption(values, "prefix");
  const { revoked } = await client.call("revokeWorkerTokens", { params: { worker_id: workerId }, body: prefix === undefined ? {} : { prefix } });
  io.stdout.write(
    json ? JSON.stringify(revoked, null, 2) + "\n" : `worker ${workerId}: revoked ${revoked.map((r) => r.prefix).join(", ")}\n`,
  );
  return 0;
}

export const workersCommand: Command = {
  name: "workers",
  summary: "List workers by box (status, tier, online, heartbeat age, GPU, running jobs); enroll a worker token or revoke it",
  usage: USAGE,
  options: { prefix: { type: "string" } },
  async run(ctx) {
    const { client, io, json, positionals } = ctx;
    const [sub, id, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`usage: ${USAGE}`);
    if (sub === "enroll") return enroll(ctx, workerIdArgument(id));
    if (sub === "revoke-token") return revokeToken(ctx, workerIdArgument(id));
    if (sub !== undefined) throw new UsageError(`unknown workers subcommand ${sub}; usage: ${USAGE}`);
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
    io.stdout.write(`\n${boxSummary(workers)}`);
    const online = workers.filter((w) => w.online).length;
    io.stdout.write(`${online} of ${workers.length} online\n`);
    return 0;
  },
};
