import { WorkerId } from "@fleet/contract";
import type { Command } from "../command.js";
import { UsageError } from "../usage-error.js";

function workerIdArgument(positionals: readonly string[], usage: string): string {
  const [id, ...extra] = positionals;
  if (id === undefined || extra.length > 0) throw new UsageError(`usage: ${usage}`);
  if (!WorkerId.safeParse(id).success) throw new UsageError(`${id} is not a worker id`);
  return id;
}

export const drainCommand: Command = {
  name: "drain",
  summary: "Let a worker finish its jobs and claim nothing new",
  usage: "fleet drain WORKER_ID [--json]",
  options: {},
  async run({ client, io, json, positionals }) {
    const id = workerIdArgument(positionals, this.usage);
    const { worker } = await client.call("drainWorker", { params: { worker_id: id } });
    if (json) {
      io.stdout.write(JSON.stringify(worker, null, 2) + "\n");
      return 0;
    }
    const running = worker.running.length;
    io.stdout.write(
      `worker ${worker.worker_id}: drain requested; it claims nothing new` +
        (running > 0 ? ` and finishes its ${running} running job${running === 1 ? "" : "s"}` : "") +
        ` (fleet undrain ${worker.worker_id} to resume)\n`,
    );
    return 0;
  },
};

export const undrainCommand: Command = {
  name: "undrain",
  summary: "Let a drained worker claim jobs again",
  usage: "fleet undrain WORKER_ID [--json]",
  options: {},
  async run({ client, io, json, positionals }) {
    const id = workerIdArgument(positionals, this.usage);
    const { worker } = await client.call("undrainWorker", { params: { worker_id: id } });
    io.stdout.write(json ? JSON.stringify(worker, null, 2) + "\n" : `worker ${worker.worker_id}: claiming jobs again\n`);
    return 0;
  },
};
