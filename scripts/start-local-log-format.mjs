// Turns one pino JSON line into one short human line. Both apps log the same pino shape (level
// label, ISO time, `service`; see packages/runtime); numeric levels and epoch times, pino's
// defaults, are still understood. Operators read production lines with grep/jq, a newcomer this.

const LEVELS = { 10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" };
const HIDDEN = new Set(["level", "time", "msg", "pid", "hostname", "name", "service", "v", "reqId", "req", "res", "responseTime"]);
// Heartbeats, claims, progress and health checks arrive every few seconds; one line each would bury everything else.
const ROUTINE = [/\/heartbeat$/, /\/jobs\/claim$/, /\/progress$/, /^\/(health|healthz|readyz|hc|metrics)$/, /^\/v1\/avatar\/jobs\/[^/]+$/, /^\/internal\/buffer\/workers$/];
const COLORS = { trace: 90, debug: 90, info: 32, warn: 33, error: 31, fatal: 31 };

function levelName(level) {
  if (typeof level === "number") return LEVELS[level] ?? String(level);
  return typeof level === "string" ? level : "info";
}

function clock(time) {
  const d = typeof time === "number" || typeof time === "string" ? new Date(time) : new Date();
  return Number.isNaN(d.getTime()) ? "--:--:--" : d.toTimeString().slice(0, 8);
}

function value(v) {
  if (v === null || typeof v !== "object") {
    const s = String(v);
    return /\s/.test(s) ? JSON.stringify(s) : s;
  }
  if (typeof v.message === "string") return JSON.stringify(v.code ? `${v.code}: ${v.message}` : v.message);
  return JSON.stringify(v);
}

function requestLine(entry) {
  const req = entry.req ?? {};
  const res = entry.res ?? {};
  const url = typeof req.url === "string" ? req.url : "";
  const ms = typeof entry.responseTime === "number" ? ` ${entry.responseTime.toFixed(0)}ms` : "";
  return { path: url.split("?")[0], text: `${req.method ?? ""} ${url} ${res.statusCode ?? ""}${ms}`.trim(), status: res.statusCode };
}

/**
 * Returns the line to print, or null for routine noise (unless verbose). Lines that are not JSON
 * (a crash before the logger exists) are printed as they are.
 */
export function formatLogLine(raw, { verbose = false, color = false } = {}) {
  let entry;
  try {
    entry = JSON.parse(raw);
  } catch {
    return raw;
  }
  if (entry === null || typeof entry !== "object") return raw;
  const level = levelName(entry.level);
  let msg = typeof entry.msg === "string" ? entry.msg : "";
  if (msg === "incoming request" && !verbose) return null;
  if (msg === "request completed") {
    const r = requestLine(entry);
    const routine = typeof r.status === "number" && r.status < 400 && ROUTINE.some((re) => re.test(r.path));
    if (routine && !verbose) return null;
    msg = r.text;
  }
  const fields = Object.entries(entry)
    .filter(([k, v]) => !HIDDEN.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${value(v)}`)
    .join(" ");
  let line = `${clock(entry.time)} ${level.toUpperCase().padEnd(5)} ${msg}${fields ? ` ${fields}` : ""}`;
  if (!verbose && line.length > 240) line = `${line.slice(0, 239)}…`;
  if (color) {
    const c = COLORS[level] ?? 0;
    line = line.replace(level.toUpperCase(), `\x1b[${c}m${level.toUpperCase()}\x1b[0m`);
  }
  return line;
}
