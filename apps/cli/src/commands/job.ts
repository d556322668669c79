import { JobId } from "@fleet/contract";
import type { Command } from "../command.js";
import { formatJobDetails } from "../format/job-details.js";
import { UsageError } from "../usage-error.js";

/** Positional job id, checked before any request so a typo is a usage error, not a 400. */
function jobIdArgument(positionals: readonly string[], usage: string): string {
  const [id, ...extra] = positionals;
  if (id === undefined || extra.length > 0) throw new UsageError(`usage: ${usage}`);
  if (!JobId.safeParse(id).success) throw new UsageError(`${id} is not a job id (a UUID, as printed by fleet jobs)`);
  return id;
}

export const jobCommand: Command = {
  name: "job",
  summary: "Show one job",
  usage: "fleet job ID [--json]",
  options: {},
  async run({ client, io, json, positionals }) {
    const id = jobIdArgument(positionals, this.usage);
    const job = await client.call("getJob", { params: { id } });
    io.stdout.write(json ? JSON.stringify(job, null, 2) + "\n" : formatJobDetails(job));
    return 0;
  },
};

export const cancelCommand: Command = {
  name: "cancel",
  summary: "Cancel a queued or running job",
  usage: "fleet cancel ID [--json]",
  options: {},
  async run({ client, io, json, positionals }) {
    const id = jobIdArgument(positionals, this.usage);
    const res = await client.call("cancelJob", { params: { id } });
    if (json) {
      io.stdout.write(JSON.stringify(res, null, 2) + "\n");
      return 0;
    }
    const job = res.job;
    const state =
      job.status === "running" ? "cancel requested; the worker aborts it at its next heartbeat" : `now ${job.status}`;
    io.stdout.write(`job ${job.id}: ${state}\n`);
    return 0;
  },
};
