import type { JobView } from "@fleet/contract";

/** Where the finished video is: its URL, and the file on disk when a worker on this machine stored it locally. */
export function describeOutputLocation(job: JobView): string[] {
  const lines = [`output: ${job.output_url ?? "(none reported)"}`];
  const path = localOutputPath(job);
  if (path !== null) lines.push(`local file: ${path}`);
  return lines;
}

export function localOutputPath(job: JobView): string | null {
  const url = job.output_url;
  if (url !== null && url.startsWith("file://")) return new URL(url).pathname;
  const fromMetrics = job.metrics?.output_path;
  return typeof fromMetrics === "string" ? fromMetrics : null;
}
