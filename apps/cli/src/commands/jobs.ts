import { JobStatus } from "@fleet/contract";
import type { JobView } from "@fleet/contract";
import { stringOption } from "../command.js";
import type { Command } from "../command.js";
import { formatAge } from "../format/duration.js";
import { formatTable, truncate } from "../format/table.js";
import { UsageError } from "../usage-error.js";

const PAGE_MAX = 200;

function jobsTable(jobs: readonly JobView[], now: Date = new Date()): string {
  const rows = jobs.map((j) => [
    j.id,
    j.status,
    `${Math.round(j.progress * 100)}%`,
    j.phase ?? "-",
    j.worker_id ?? "-",
    String(j.attempts),
    formatAge(j.created_at, now),
    truncate(j.status === "succeeded" ? (j.output_url ?? "") : (j.error ?? ""), 70),
  ]);
  return formatTable(["ID", "STATUS", "PROGRESS", "PHASE", "WORKER", "ATTEMPTS", "CREATED", "OUTPUT / ERROR"], rows);
}

export const jobsCommand: Command = {
  name: "jobs",
  summary: "List jobs, newest first",
  usage: `fleet jobs [--status ${JobStatus.options.join("|")}] [--limit N] [--json]`,
  options: { status: { type: "string", short: "s" }, limit: { type: "string", short: "n" } },
  async run({ client, io, json, values }) {
    const statusText = stringOption(values, "status");
    const status = statusText === undefined ? undefined : JobStatus.safeParse(statusText);
    if (status !== undefined && !status.success) {
      throw new UsageError(`--status must be one of ${JobStatus.options.join(", ")}`);
    }
    const limit = Number(stringOption(values, "limit") ?? 20);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError("--limit must be an integer from 1 to 10000");
    const jobs: JobView[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.call("listJobs", {
        query: { status: status?.data, limit: Math.min(PAGE_MAX, limit - jobs.length), cursor },
      });
      jobs.push(...page.jobs);
      cursor = page.next_cursor ?? undefined;
    } while (cursor !== undefined && jobs.length < limit);
    if (json) {
      io.stdout.write(JSON.stringify(jobs, null, 2) + "\n");
      return 0;
    }
    io.stdout.write(jobs.length === 0 ? "No jobs.\n" : jobsTable(jobs));
    return 0;
  },
};
