import type { B2TestServer } from "@fleet/testing/b2-test-server";
import { probeMedia } from "@fleet/testing/media";
import { queryOnce } from "./fleet-db.js";
import type { SubmittedJob } from "./job-submitter.js";

export interface AuditInput {
  dbUrl: string;
  b2: B2TestServer;
  b2Prefix: string;
  total: number;
  keyPrefix: string;
  submitted: readonly SubmittedJob[];
  /** Submission indexes whose video is corrupt: they must fail as media errors. */
  corruptIndexes: ReadonlySet<number>;
  /** Share of the well-formed jobs that must succeed despite the faults. */
  minSuccessShare: number;
}

export interface AuditResult {
  problems: string[];
  tally: Record<string, unknown>;
}

interface JobRow {
  id: string;
  status: string;
  idempotency_key: string | null;
  attempts: number;
  failures: number;
  interruptions: number;
  error: string | null;
  error_info: { error_type?: string; stage?: string; message?: string } | null;
  output_url: string | null;
  buffer_job_id: string | null;
}

interface AttemptRow {
  buffer_job_id: string;
  job_id: string;
  worker_id: string;
  status: string;
  output_url: string | null;
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1;
  return out;
}

/** Collects every broken promise, not just the first: one run's report should show them all. */
class Problems {
  readonly list: string[] = [];
  private readonly perKind = new Map<string, number>();
  add(kind: string, message: string): void {
    const n = (this.perKind.get(kind) ?? 0) + 1;
    this.perKind.set(kind, n);
    if (n <= 5) this.list.push(`${kind}: ${message}`);
    else if (n === 6) this.list.push(`${kind}: (more of the same omitted)`);
  }
}

/**
 * The end-of-run verdict, from the database and the B2 server themselves: every job terminal,
 * none lost or duplicated, exactly one succeeded attempt per succeeded job, each success's output
 * stored exactly once under its key, each failure with a cause.
 */
export async function auditFaultRun(input: AuditInput): Promise<AuditResult> {
  const p = new Problems();
  const { dbUrl, b2, b2Prefix, total } = input;

  const jobs = await queryOnce<JobRow>(
    dbUrl,
    `select id, status, idempotency_key, attempts, failures, interruptions, error, error_info, output_url, buffer_job_id
       from jobs`,
  );
  const attempts = await queryOnce<AttemptRow>(dbUrl, "select buffer_job_id, job_id, worker_id, status, output_url from buffer_jobs");

  // None lost, none duplicated: one job per submission, one submission per idempotency key.
  if (input.submitted.length !== total) p.add("lost_submission", `${input.submitted.length} of ${total} creates were answered`);
  const byKey = new Map(jobs.map((j) => [j.idempotency_key, j]));
  if (jobs.length !== total) p.add("job_count", `jobs table has ${jobs.length} rows, ${total} were submitted`);
  const indexOf = new Map<string, number>();
  for (const s of input.submitted) {
    const row = byKey.get(s.key);
    if (!row) p.add("lost_job", `submission #${s.index} (${s.key}) has no row`);
    else if (row.id !== s.jobId) p.add("duplicate_job", `submission #${s.index} answered ${s.jobId}, the row for its key is ${row.id}`);
    indexOf.set(s.jobId, s.index);
  }

  const attemptsOf = new Map<string, AttemptRow[]>();
  for (const a of attempts) attemptsOf.set(a.job_id, [...(attemptsOf.get(a.job_id) ?? []), a]);

  const objects = new Map(b2.listObjects().map((o) => [o.fileName, o]));
  const versionCount = countBy(b2.listFileVersions(), (v) => v.fileName);
  const succeeded = jobs.filter((j) => j.status === "succeeded");
  for (const job of jobs) {
    const own = attemptsOf.get(job.id) ?? [];
    const wins = own.filter((a) => a.status === "succeeded");
    if (!["succeeded", "failed", "cancelled"].includes(job.status)) p.add("not_terminal", `job ${job.id} is ${job.status}`);
    if (job.status === "succeeded") {
      if (wins.length !== 1) p.add("double_success", `job ${job.id} has ${wins.length} succeeded attempts`);
      else if (wins[0]?.buffer_job_id !== job.buffer_job_id || wins[0]?.output_url !== job.output_url) {
        p.add("success_mismatch", `job ${job.id}: current attempt ${job.buffer_job_id} / ${job.output_url}, succeeded attempt ${wins[0]?.buffer_job_id} / ${wins[0]?.output_url}`);
      }
      const name = `${b2Prefix}/${job.id}.mp4`;
      const object = objects.get(name);
      if (!object || object.size === 0) p.add("output_missing", `job ${job.id}: no ${name} in B2`);
      // B2 keeps every upload of a name. Only a job that ran more than once (at-least-once
      // execution under kills) may have uploaded its output more than once.
      const versions = versionCount[name] ?? 0;
      if (versions > 1 && own.length < 2) p.add("duplicate_upload", `job ${job.id}: ${versions} versions of ${name} from ${own.length} attempt(s)`);
      const path = job.output_url ? decodeURIComponent(new URL(job.output_url).pathname) : null;
      if (path !== `/file/${b2.bucketName}/${name}`) p.add("output_url", `job ${job.id}: output_url ${job.output_url} is not ${name}`);
    } else if (wins.length > 0) {
      p.add("success_on_unsucceeded_job", `job ${job.id} is ${job.status} but attempt ${wins[0]?.buffer_job_id} succeeded`);
    }
    if (job.status === "failed") {
      const info = job.error_info;
      if (!job.error?.trim() || !info?.error_type || !info.stage || !info.message) {
        p.add("failure_without_cause", `job ${job.id}: error=${JSON.stringify(job.error)} error_info=${JSON.stringify(info)}`);
      }
    }
    const index = indexOf.get(job.id);
    if (index !== undefined && input.corruptIndexes.has(index)) {
      if (job.status !== "failed" || job.error_info?.error_type !== "media_error") {
        p.add("corrupt_input", `job ${job.id} (corrupt video) ended ${job.status} / ${JSON.stringify(job.error_info)}`);
      }
      const failedAttempts = own.filter((a) => a.status === "failed").length;
      if (failedAttempts > 1) p.add("media_error_retried", `job ${job.id}: ${failedAttempts} failed attempts for a media error`);
    }
  }

  // Storage ↔ jobs: every output object belongs to one of this run's jobs.
  const jobIds = new Set(jobs.map((j) => j.id));
  const outputs = [...objects.keys()].filter((n) => n.startsWith(`${b2Prefix}/`) && n.endsWith(".mp4"));
  const strays = outputs.filter((n) => !jobIds.has(n.slice(b2Prefix.length + 1, -4)));
  for (const n of strays) p.add("stray_output", `${n} matches no job`);
  const succeededIds = new Set(succeeded.map((j) => j.id));
  const orphans = outputs.filter((n) => !succeededIds.has(n.slice(b2Prefix.length + 1, -4)) && !strays.includes(n));

  const wellFormed = jobs.filter((j) => !input.corruptIndexes.has(indexOf.get(j.id) ?? -1));
  const wellFormedOk = wellFormed.filter((j) => j.status === "succeeded").length;
  if (wellFormed.length > 0 && wellFormedOk / wellFormed.length < input.minSuccessShare) {
    p.add("too_many_failures", `${wellFormedOk}/${wellFormed.length} well-formed jobs succeeded (want ≥ ${input.minSuccessShare * 100}%)`);
  }

  // Every output must be real media (video plus the voice) and downloadable at its output_url
  // with the stored size: a sample would let one bad upload in a few hundred through.
  await forEachLimited(succeeded, 8, async (job) => {
    const name = `${b2Prefix}/${job.id}.mp4`;
    const path = b2.objectPath(name);
    if (!path) return; // already reported as output_missing
    const probe = await probeMedia(path).catch((err: unknown) => ({ error: String(err) }));
    if ("error" in probe || !probe.hasVideo || !probe.hasAudio) p.add("output_not_media", `job ${job.id}: ${JSON.stringify(probe)}`);
    if (!job.output_url) return;
    // The body is always read to the end: undici keeps the socket otherwise.
    const got = await fetch(job.output_url).then(
      async (res) => ({ status: res.status, bytes: (await res.arrayBuffer()).byteLength }),
      (err: unknown) => ({ status: 0, bytes: 0, error: String(err) }),
    );
    if (got.status !== 200 || got.bytes !== objects.get(name)?.size) {
      p.add("output_not_downloadable", `GET ${job.output_url} → ${JSON.stringify(got)}`);
    }
  });

  const failedCauses = countBy(
    jobs.filter((j) => j.status === "failed"),
    (j) => `${j.error_info?.error_type ?? "?"}/${j.error_info?.stage ?? "?"}: ${(j.error ?? "").slice(0, 80)}`,
  );
  return {
    problems: p.list,
    tally: {
      jobs: countBy(jobs, (j) => j.status),
      attempts: { total: attempts.length, ...countBy(attempts, (a) => a.status) },
      interruptions: jobs.reduce((sum, j) => sum + j.interruptions, 0),
      failedAttempts: jobs.reduce((sum, j) => sum + j.failures, 0),
      jobsWithMoreThanOneAttempt: jobs.filter((j) => j.attempts > 1).length,
      failureCauses: failedCauses,
      outputsInB2: outputs.length,
      outputsUploadedMoreThanOnce: outputs.filter((n) => (versionCount[n] ?? 0) > 1).length,
      orphanOutputs: orphans.length,
    },
  };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}
