import pg from "pg";

/**
 * One statement on a fresh connection. The suite restarts PostgreSQL under itself, so it keeps
 * no pool whose sockets would die with the server; a failed query is the caller's to retry.
 */
export async function queryOnce<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000, query_timeout: 10_000 });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface JobCounts {
  total: number;
  terminal: number;
  running: number;
  queued: number;
}

export async function jobCounts(url: string): Promise<JobCounts> {
  const [row] = await queryOnce<{ total: string; terminal: string; running: string; queued: string }>(
    url,
    `select count(*) as total,
            count(*) filter (where status in ('succeeded', 'failed', 'cancelled')) as terminal,
            count(*) filter (where status = 'running') as running,
            count(*) filter (where status = 'queued') as queued
       from jobs`,
  );
  return { total: Number(row?.total ?? 0), terminal: Number(row?.terminal ?? 0), running: Number(row?.running ?? 0), queued: Number(row?.queued ?? 0) };
}

/** Workers holding a running attempt right now: the ones worth killing. */
export async function busyWorkerIds(url: string): Promise<string[]> {
  const rows = await queryOnce<{ worker_id: string }>(url, "select distinct worker_id from buffer_jobs where status = 'running'");
  return rows.map((r) => r.worker_id);
}

export interface WorkerLeftovers {
  runningAttempts: number;
  busyWorkers: string[];
}

/** What a stopped fleet must not leave behind: attempts still running, workers still `busy`. */
export async function workerLeftovers(url: string): Promise<WorkerLeftovers> {
  const [running] = await queryOnce<{ n: string }>(url, "select count(*) as n from buffer_jobs where status = 'running'");
  const busy = await queryOnce<{ worker_id: string }>(url, "select worker_id from buffer_workers where status = 'busy' order by worker_id");
  return { runningAttempts: Number(running?.n ?? 0), busyWorkers: busy.map((r) => r.worker_id) };
}
