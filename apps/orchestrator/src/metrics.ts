/** In-process counters since start; gauges (jobs by status, workers) are read from the database. */
export class Counters {
  claims = 0;
  emptyClaims = 0;
  heartbeats = 0;
  statusReports = 0;
  leaseLost = 0;
  leasesReaped = 0;
  webhooksDelivered = 0;
  webhooksFailed = 0;
  /** Heartbeats answered 4xx, by worker and status: a worker the orchestrator keeps refusing. */
  readonly heartbeatsRejected = new LabeledCounter("fleet_heartbeats_rejected_total", "Heartbeats answered with a 4xx, by worker and HTTP status.", ["worker_id", "status_code"]);
  /** Failed attempts as reported by workers, by the stage that failed and its error type. */
  readonly attemptFailures = new LabeledCounter("fleet_attempt_failures_total", "Attempts reported failed, by stage and error type.", ["stage", "error_type"]);
  /** Seconds a job was claimable before a worker claimed it. */
  readonly queueWait = new Histogram("fleet_queue_wait_seconds", "Seconds from a job becoming claimable to its claim.", [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600]);

  /** The labeled counters and histograms, in Prometheus text format. */
  render(): string[] {
    return [this.heartbeatsRejected.render(), this.attemptFailures.render(), this.queueWait.render()];
  }
}

/**
 * Label values come from requests, so a caller with a bad key could invent worker ids without
 * end; past this many series the rest are counted under "other" so /metrics stays bounded.
 */
const MAX_SERIES = 500;

class LabeledCounter {
  private readonly values = new Map<string, { labels: string[]; value: number }>();
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly labelNames: readonly string[],
  ) {}

  inc(labels: readonly string[], by = 1): void {
    let key = JSON.stringify(labels);
    if (!this.values.has(key) && this.values.size >= MAX_SERIES) {
      labels = this.labelNames.map(() => "other");
      key = JSON.stringify(labels);
    }
    const cur = this.values.get(key);
    if (cur) cur.value += by;
    else this.values.set(key, { labels: [...labels], value: by });
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { labels, value } of this.values.values()) lines.push(`${this.name}${formatLabels(this.labelNames, labels)} ${value}`);
    return lines.join("\n");
  }
}

class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly buckets: readonly number[],
  ) {
    this.counts = buckets.map(() => 0);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const v = Math.max(0, value);
    this.buckets.forEach((le, i) => {
      if (v <= le) this.counts[i] = (this.counts[i] ?? 0) + 1;
    });
    this.sum += v;
    this.count++;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((le, i) => lines.push(`${this.name}_bucket{le="${le}"} ${this.counts[i] ?? 0}`));
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`);
    return lines.join("\n");
  }
}

export function formatLabels(names: readonly string[], values: readonly string[]): string {
  const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
  return `{${names.map((n, i) => `${n}="${escape(values[i] ?? "")}"`).join(",")}}`;
}
