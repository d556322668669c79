/** 4s, 2m05s, 3h07m, 2d04h: short enough for a table column. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, "0")}h`;
}

/** Age of an ISO timestamp relative to `now`, as `12s ago`; `-` when there is none. */
export function formatAge(iso: string | null, now: Date = new Date()): string {
  if (iso === null) return "-";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return `${formatDuration((now.getTime() - t) / 1000)} ago`;
}
