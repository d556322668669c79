type Labels = Record<string, string>;

interface Series {
  help: string;
  type: "counter" | "gauge" | "histogram";
  values: Map<string, { labels: Labels; value: number }>;
  /** Histograms only: per label set, cumulative bucket counts, sum and count. */
  histograms?: Map<string, { labels: Labels; buckets: number[]; sum: number; count: number }>;
  bounds?: readonly number[];
  /** Gauges read at scrape time (heartbeat age, running jobs) instead of being pushed. */
  collect?: () => Array<{ labels: Labels; value: number }>;
}

/**
 * A small Prometheus text registry: the worker exports a dozen series, not worth a dependency.
 * Names carry their unit (`_seconds`, `_total`); latencies are histograms.
 */
export class Metrics {
  private series = new Map<string, Series>();

  counter(name: string, help: string): (labels?: Labels, by?: number) => void {
    const s = this.define(name, help, "counter");
    return (labels = {}, by = 1) => {
      const key = labelKey(labels);
      const cur = s.values.get(key);
      if (cur) cur.value += by;
      else s.values.set(key, { labels, value: by });
    };
  }

  /** Latencies: cumulative `le` buckets, `_sum` and `_count`, so p95 comes from histogram_quantile(). */
  histogram(name: string, help: string, bounds: readonly number[]): (labels: Labels, value: number) => void {
    const s = this.define(name, help, "histogram");
    s.bounds = bounds;
    s.histograms ??= new Map();
    const all = s.histograms;
    return (labels, value) => {
      if (!Number.isFinite(value)) return;
      const key = labelKey(labels);
      let h = all.get(key);
      if (!h) {
        h = { labels, buckets: bounds.map(() => 0), sum: 0, count: 0 };
        all.set(key, h);
      }
      const v = Math.max(0, value);
      bounds.forEach((le, i) => {
        if (v <= le && h) h.buckets[i] = (h.buckets[i] ?? 0) + 1;
      });
      h.sum += v;
      h.count++;
    };
  }

  gauge(name: string, help: string, collect: () => number | Array<{ labels: Labels; value: number }>): void {
    const s = this.define(name, help, "gauge");
    s.collect = () => {
      const v = collect();
      return typeof v === "number" ? [{ labels: {}, value: v }] : v;
    };
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, s] of this.series) {
      lines.push(`# HELP ${name} ${s.help}`, `# TYPE ${name} ${s.type}`);
      if (s.histograms && s.bounds) {
        const bounds = s.bounds;
        for (const h of s.histograms.values()) {
          bounds.forEach((le, i) => lines.push(`${name}_bucket${formatLabels({ ...h.labels, le: String(le) })} ${h.buckets[i] ?? 0}`));
          lines.push(`${name}_bucket${formatLabels({ ...h.labels, le: "+Inf" })} ${h.count}`);
          lines.push(`${name}_sum${formatLabels(h.labels)} ${h.sum}`, `${name}_count${formatLabels(h.labels)} ${h.count}`);
        }
        continue;
      }
      const values = s.collect ? s.collect() : [...s.values.values()];
      for (const { labels, value } of values) {
        if (!Number.isFinite(value)) continue;
        lines.push(`${name}${formatLabels(labels)} ${value}`);
      }
    }
    return `${lines.join("\n")}\n`;
  }

  private define(name: string, help: string, type: Series["type"]): Series {
    const existing = this.series.get(name);
    if (existing) return existing;
    const s: Series = { help, type, values: new Map() };
    this.series.set(name, s);
    return s;
  }
}

function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(",");
}

function formatLabels(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return "";
  return `{${keys.map((k) => `${k}="${String(labels[k]).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`).join(",")}}`;
}
