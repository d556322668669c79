import { createRouteClient, fetchDispatcher, HEADERS } from "@fleet/contract";

export interface JobSubmitterOptions {
  /** The orchestrator's public API (through the fault proxy, so 503s and restarts hit clients too). */
  baseUrl: string;
  apiKey: string;
  total: number;
  /** Idempotency keys are `${keyPrefix}-${index}`: a retried create must return the same job. */
  keyPrefix: string;
  input: (index: number) => { video_url: string; audio_url: string };
  signal: AbortSignal;
  concurrency?: number;
}

export interface SubmittedJob {
  index: number;
  key: string;
  jobId: string;
}

export interface JobSubmitter {
  /** Lets the submitter create jobs up to index `count - 1` (the driver releases jobs in waves). */
  allowUpTo(count: number): void;
  created(): readonly SubmittedJob[];
  /** Creates that had to be sent again (network error, 5xx, proxy 503). */
  retries(): number;
  /** Creates refused with a 4xx: the API rejected a valid body, which is a finding. */
  rejections(): readonly string[];
  /** Resolves when all `total` jobs exist (or the signal aborts). */
  done: Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Creates the suite's jobs through the public API the way a careful client does: every create
 * carries an Idempotency-Key and is retried on network errors and 5xx until it is answered, so
 * an orchestrator restart or a 503 window may delay a job but never drop or duplicate it.
 */
export function startJobSubmitter(opts: JobSubmitterOptions): JobSubmitter {
  let allowed = 0;
  let next = 0;
  let retries = 0;
  const created: SubmittedJob[] = [];
  const rejections: string[] = [];
  const waiters = new Set<() => void>();
  const client = createRouteClient({ baseUrl: opts.baseUrl, credentials: { apiKey: opts.apiKey }, dispatcher: fetchDispatcher, timeoutMs: 10_000 });

  async function createOne(index: number): Promise<void> {
    const key = `${opts.keyPrefix}-${index}`;
    const body = { ...opts.input(index), aspect_ratio: "1:1", resolution: "512x512", metadata: { fault_suite_index: index } };
    for (let attempt = 1; !opts.signal.aborted; attempt++) {
      const res = await client.call("createJob", { body, headers: { [HEADERS.idempotencyKey]: key } }, { signal: opts.signal });
      if (res.ok) {
        created.push({ index, key, jobId: res.value.id });
        return;
      }
      // A network outcome (refused, reset, timed out: the orchestrator is restarting), a 5xx, or a
      // garbled 2xx is tried again; a 4xx means the API refused a valid body.
      if (res.kind === "error" && res.status < 500) {
        rejections.push(`create #${index} → ${res.status} ${res.text.slice(0, 300)}`);
        return;
      }
      retries++;
      await sleep(Math.min(2_000, 100 * 2 ** Math.min(attempt, 5)));
    }
  }

  async function lane(): Promise<void> {
    while (!opts.signal.aborted && next < opts.total) {
      if (next >= allowed) {
        await new Promise<void>((resolve) => {
          waiters.add(resolve);
          setTimeout(resolve, 500);
        });
        waiters.clear();
        continue;
      }
      await createOne(next++);
    }
  }

  const done = Promise.all(Array.from({ length: opts.concurrency ?? 4 }, () => lane())).then(() => undefined);

  return {
    allowUpTo(count) {
      allowed = Math.min(opts.total, Math.max(allowed, count));
      for (const resolve of waiters) resolve();
    },
    created: () => created,
    retries: () => retries,
    rejections: () => rejections,
    done,
  };
}
