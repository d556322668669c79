import { mkdir, open, readFile, readdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { BufferJobId, JobStatusReport } from "@fleet/contract";
import type { Logger } from "./logger.js";
import { credentialRejected, type OrchestratorClient } from "./orchestrator-client.js";
import { backoffDelay } from "./util/backoff.js";
import { WakeSignal } from "@fleet/runtime";
import { wellFormed } from "./util/well-formed.js";

export const OutboxEntry = z.object({
  buffer_job_id: BufferJobId,
  musetalk_job_id: z.string(),
  worker_id: z.string(),
  written_at: z.string(),
  report: JobStatusReport,
});
export type OutboxEntry = z.infer<typeof OutboxEntry>;

export interface Outbox {
  /** Re-sends whatever a previous run left behind. */
  start(): Promise<void>;
  /** Resolves once the report is on disk; sending continues in the background until acknowledged. */
  deliver(entry: OutboxEntry): Promise<void>;
  pendingIds(): string[];
  /** Retry now: the orchestrator is answering again. */
  wake(): void;
  /** Waits until every report is acknowledged, or `timeoutMs` passes; true when empty. */
  flush(timeoutMs: number): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * Terminal reports go to disk before the network, and leave disk only when the orchestrator has
 * answered for them (a completion that was never reported hung the job at 0.95). 200 ends
 * a report; so do 409 (another attempt owns the job, or it is finished) and 404, which no retry
 * can change. Everything else is retried with backoff, for as long as it takes.
 */
export function createOutbox(opts: { dir: string; client: OrchestratorClient; log: Logger; timeoutMs: number; maxBackoffMs?: number }): Outbox {
  const { dir, client, log } = opts;
  const maxBackoffMs = opts.maxBackoffMs ?? 30_000;
  const pending = new Map<string, Promise<void>>();
  const wakeUp = new WakeSignal();
  const drained = new WakeSignal();
  const stopController = new AbortController();
  const fileFor = (id: string) => path.join(dir, `${id}.json`);

  async function persist(entry: OutboxEntry) {
    await mkdir(dir, { recursive: true });
    const file = fileFor(entry.buffer_job_id);
    const tmp = `${file}.tmp`;
    const handle = await open(tmp, "w");
    try {
      await handle.writeFile(JSON.stringify(entry));
      // The rename is only as durable as the data under it.
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  }

  async function send(entry: OutboxEntry) {
    const id = entry.buffer_job_id;
    const fields = { bufferJobId: id, jobId: entry.musetalk_job_id, status: entry.report.status };
    for (let failures = 0; !stopController.signal.aborted; ) {
      const res = await client.reportJobStatus(id, entry.report, { timeoutMs: opts.timeoutMs, signal: stopController.signal });
      if (res.ok) {
        log.info({ ...fields, jobStatus: res.value.job_status, attempts: failures + 1 }, "buffer_job_status_reported");
        await rm(fileFor(id), { force: true });
        return;
      }
      if (res.aborted) return;
      if (res.statusCode === 409 || res.statusCode === 404) {
        log.warn({ ...fields, statusCode: res.statusCode, code: res.code, body: res.bodyExcerpt, err: res.error }, "buffer_job_status_rejected");
        await rm(fileFor(id), { force: true });
        return;
      }
      if (res.statusCode === 400 || res.statusCode === 422) {
        // Our own report is malformed: a bug no retry fixes. Keep it for a human, out of the queue.
        log.error({ ...fields, statusCode: res.statusCode, code: res.code, body: res.bodyExcerpt, err: res.error }, "buffer_job_status_rejected");
        await mkdir(path.join(dir, "rejected"), { recursive: true });
        await rename(fileFor(id), path.join(dir, "rejected", `${id}.json`)).catch(() => undefined);
        return;
      }
      failures += 1;
      const config = credentialRejected(res);
      log[config ? "error" : "warn"](
        { ...fields, statusCode: res.statusCode, body: res.bodyExcerpt, err: res.error, failures, ...(config ? { configurationError: true } : {}) },
        "buffer_job_status_update_failed",
      );
      await wakeUp.wait(backoffDelay(failures, 1_000, maxBackoffMs), stopController.signal);
    }
  }

  function track(entry: OutboxEntry) {
    const id = entry.buffer_job_id;
    if (pending.has(id)) return;
    const p = send(entry)
      .catch((err: unknown) => log.error({ err, bufferJobId: id }, "buffer_job_status_update_failed"))
      .finally(() => {
        pending.delete(id);
        if (pending.size === 0) drained.notify();
      });
    pending.set(id, p);
  }

  return {
    async start() {
      await mkdir(dir, { recursive: true });
      for (const name of await readdir(dir)) {
        if (!name.endsWith(".json")) continue;
        const file = path.join(dir, name);
        const parsed = OutboxEntry.safeParse(await readFile(file, "utf8").then(JSON.parse).catch(() => null));
        if (!parsed.success) {
          log.error({ file }, "outbox_entry_unreadable");
          await mkdir(path.join(dir, "rejected"), { recursive: true });
          await rename(file, path.join(dir, "rejected", name)).catch(() => undefined);
          continue;
        }
        log.info({ bufferJobId: parsed.data.buffer_job_id, status: parsed.data.report.status }, "outbox_resend_after_restart");
        track(parsed.data);
      }
    },
    async deliver(raw) {
      const entry = wellFormed(raw);
      try {
        await persist(entry);
      } catch (err) {
        // A full or broken disk must not swallow the result: send it anyway, from memory only.
        log.error({ err, bufferJobId: entry.buffer_job_id }, "outbox_write_failed");
      }
      track(entry);
    },
    pendingIds: () => [...pending.keys()],
    wake: () => wakeUp.notify(),
    async flush(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      wakeUp.notify();
      while (pending.size > 0 && Date.now() < deadline) {
        await drained.wait(Math.min(250, deadline - Date.now()));
      }
      return pending.size === 0;
    },
    async stop() {
      stopController.abort();
      await Promise.all(pending.values());
    },
  };
}
