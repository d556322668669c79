import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileShare {
  what: string;
  /** Share of the busy (non-idle) samples. */
  pct: number;
}

export interface ProfileSummary {
  busyMs: number;
  shares: ProfileShare[];
}

/** Which package or part of Node a frame belongs to. */
function owner(url: string): string {
  const at = url.lastIndexOf("/node_modules/");
  if (at >= 0) {
    const [scope, name] = url.slice(at + "/node_modules/".length).split("/");
    return scope?.startsWith("@") ? `${scope}/${name}` : (scope ?? url);
  }
  const app = /\/(apps|packages)\/([^/]+)\/dist\//.exec(url);
  if (app) return `fleet ${app[2]} code`;
  if (url.startsWith("node:")) return "Node internals (streams, http, events…)";
  return url;
}

/**
 * Self time of a V8 `.cpuprofile` (from `node --cpu-prof`), grouped by package. Native frames
 * (no script URL) are charged to the nearest package above them, so the kernel work behind a
 * socket write shows up as "socket write ← pg" rather than as an anonymous builtin.
 */
export function summarizeProfile(profile: CpuProfile, top = 12): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const hits = new Map<number, number>();
  for (const s of profile.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
  const usPerSample = (profile.endTime - profile.startTime) / Math.max(1, profile.samples.length);
  const totals = new Map<string, number>();
  let busy = 0;
  for (const [id, count] of hits) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url } = node.callFrame;
    if (functionName === "(idle)") continue;
    busy += count;
    let key: string;
    if (url) key = owner(url);
    else if (functionName === "(garbage collector)") key = "garbage collection";
    else if (functionName === "(program)") key = "V8/Node runtime (program)";
    else {
      let above = "?";
      for (let cur = parent.get(id); cur !== undefined; cur = parent.get(cur)) {
        const u = byId.get(cur)?.callFrame.url;
        if (u && !u.startsWith("node:")) {
          above = owner(u);
          break;
        }
      }
      key = /^write/.test(functionName) ? `socket/pipe write ← ${above}` : `native ${functionName || "(anonymous)"} ← ${above}`;
    }
    totals.set(key, (totals.get(key) ?? 0) + count);
  }
  const shares = [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([what, n]) => ({ what, pct: (n / Math.max(1, busy)) * 100 }));
  return { busyMs: (busy * usPerSample) / 1000, shares };
}

/** Reads the single profile a `--cpu-prof-dir` holds after the process exited. */
export async function readProfileDir(dir: string): Promise<CpuProfile> {
  const file = (await readdir(dir)).find((f) => f.endsWith(".cpuprofile"));
  if (!file) throw new Error(`no .cpuprofile in ${dir}`);
  return JSON.parse(await readFile(join(dir, file), "utf8")) as CpuProfile;
}
