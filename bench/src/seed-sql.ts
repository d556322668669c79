import type pg from "pg";

/**
 * Queues `count` runnable jobs in one statement, as the public API would leave them (status
 * `queued`, run_after now). The insert trigger NOTIFYs once per transaction, so idle long-polls
 * wake exactly as they would for API-created jobs.
 */
export async function queueJobs(client: pg.ClientBase, count: number, createdAgoSec = 0): Promise<void> {
  await client.query(
    `insert into jobs (video_url, audio_url, aspect_ratio, resolution, params, max_attempts, created_at, run_after)
     select 'http://127.0.0.1:9/v/' || i || '.mp4', 'http://127.0.0.1:9/a/' || i || '.wav', '1:1', '512x512', '{}'::jsonb, 3,
            now() - make_interval(secs => $2::double precision * (1 - i::double precision / $1)),
            now() - make_interval(secs => $2::double precision * (1 - i::double precision / $1))
       from generate_series(1, $1::int) as i`,
    [count, createdAgoSec],
  );
}

/** Registers workers as a heartbeat would (online, idle, capacity 1): `<prefix>-0` … `<prefix>-(n-1)`. */
export async function registerWorkers(client: pg.ClientBase, prefix: string, count: number, capacity = 1): Promise<string[]> {
  await client.query(
    `insert into buffer_workers (worker_id, status, gpu_class, capacity, last_heartbeat, first_seen)
     select $1 || '-' || i, 'idle', 'bench', $3, now(), now() from generate_series(0, $2::int - 1) as i
     on conflict (worker_id) do update set last_heartbeat = now(), status = 'idle'`,
    [prefix, count, capacity],
  );
  return Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
}

/** Keeps SQL-level workers online without the HTTP heartbeat (which is benchmarked on its own). */
export async function touchWorkers(client: pg.ClientBase, prefix: string): Promise<void> {
  await client.query(`update buffer_workers set last_heartbeat = now() where worker_id like $1 || '-%'`, [prefix]);
}
