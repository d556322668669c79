import { createRouteClient, fetchDispatcher, type ListJobsResponse, type RouteOutcome } from "@fleet/contract";
import { queryOnce } from "./fleet-db.js";

/**
 * The client's view after the storm: every job listed once through the public API (paging by
 * cursor), each with the status the database holds. Returns the disagreements.
 */
export async function compareApiWithDatabase(opts: { baseUrl: string; apiKey: string; dbUrl: string }): Promise<string[]> {
  const rows = await queryOnce<{ id: string; status: string }>(opts.dbUrl, "select id, status from jobs");
  const expected = new Map(rows.map((r) => [r.id, r.status]));
  const seen = new Map<string, string>();
  const problems: string[] = [];
  const client = createRouteClient({ baseUrl: opts.baseUrl, credentials: { apiKey: opts.apiKey }, dispatcher: fetchDispatcher, timeoutMs: 15_000 });
  let cursor: string | null = null;
  for (let page = 0; page < 1_000; page++) {
    const res: RouteOutcome<ListJobsResponse> = await client.call("listJobs", { query: { limit: 200, cursor: cursor ?? undefined } });
    if (!res.ok) {
      const why = res.kind === "network" ? String(res.cause) : `${res.status} ${res.text.slice(0, 200)}`;
      return [`api_list: page ${page} answered ${why}`];
    }
    const body: ListJobsResponse = res.value;
    for (const job of body.jobs) {
      if (seen.has(job.id)) problems.push(`api_list: job ${job.id} listed twice`);
      seen.set(job.id, job.status);
    }
    cursor = body.next_cursor;
    if (!cursor) break;
  }
  for (const [id, status] of expected) {
    const listed = seen.get(id);
    if (listed === undefined) problems.push(`api_list: job ${id} (${status}) missing from the listing`);
    else if (listed !== status) problems.push(`api_list: job ${id} listed ${listed}, database says ${status}`);
  }
  for (const id of seen.keys()) if (!expected.has(id)) problems.push(`api_list: job ${id} listed but not in the database`);
  return problems.slice(0, 10);
}
