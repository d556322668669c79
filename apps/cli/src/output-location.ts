import { join } from "node:path";
import type { JobView } from "@fleet/contract";
import type { LocalOutputMapping } from "./config.js";

/** Where the finished video is: its URL, and the file on disk when a worker on this machine stored it locally. */
export function describeOutputLocation(job: JobView, mappings: readonly LocalOutputMapping[]): string[] {
  const lines = [`output: ${job.output_url ?? "(none reported)"}`];
  const path = localOutputPath(job, mappings);
  if (path !== null) lines.push(`local file: ${path}`);
  return lines;
}

export function localOutputPath(job: JobView, mappings: readonly LocalOutputMapping[]): string | null {
  const url = job.output_url;
  if (url === null) return null;
  if (url.startsWith("file://")) return new URL(url).pathname;
  for (const m of mappings) {
    const prefix = m.url.endsWith("/") ? m.url : `${m.url}/`;
    if (!url.startsWith(prefix)) continue;
    const key = url.slice(prefix.length).split("/").map(decodeURIComponent);
    // A key is relative; anything climbing out of the directory is not ours to point at.
    if (key.some((part) => part === ".." || part === "")) return null;
    return join(m.dir, ...key);
  }
  return null;
}
