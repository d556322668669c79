import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// docker/observability ships alert rules and a Grafana dashboard built on the metrics the
// orchestrator and worker export. These checks need no Prometheus: they catch a renamed metric,
// a broken dashboard, or an alert without a runbook line. (promtool's own checks run in
// scripts/check-observability.sh.)
const repoDir = fileURLToPath(new URL("../../../", import.meta.url));
const obsDir = path.join(repoDir, "docker/observability");

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(p)));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") && !entry.name.endsWith(".observability.ts")) out.push(p);
  }
  return out;
}

/** Every `fleet_*` series name the two apps can export, read from their sources. */
async function exportedMetrics(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const app of ["apps/orchestrator/src", "apps/worker/src"]) {
    for (const file of await sourceFiles(path.join(repoDir, app))) {
      for (const m of (await readFile(file, "utf8")).matchAll(/["`](fleet_[a-z0-9_]+)/g)) names.add(m[1] ?? "");
    }
  }
  return names;
}

function referencedMetrics(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/\b(fleet_[a-z0-9_]+)/g)) names.add((m[1] ?? "").replace(/_(bucket|sum|count)$/, ""));
  return names;
}

interface Dashboard {
  uid: string;
  panels: Array<{ id: number; title: string; datasource: { uid: string }; targets: Array<{ expr: string; refId: string; datasource: { uid: string } }> }>;
}

describe("docker/observability", () => {
  it("alerts and dashboard use only metrics the orchestrator and worker export", async () => {
    const exported = await exportedMetrics();
    const alerts = await readFile(path.join(obsDir, "alerts.yml"), "utf8");
    const dashboard = await readFile(path.join(obsDir, "grafana/dashboards/fleet.json"), "utf8");
    const missing = [...referencedMetrics(alerts), ...referencedMetrics(dashboard)].filter((n) => !exported.has(n));
    expect(missing).toEqual([]);
  });

  it("the dashboard is valid JSON with unique panel ids, each query on the provisioned Prometheus", async () => {
    const dashboard = JSON.parse(await readFile(path.join(obsDir, "grafana/dashboards/fleet.json"), "utf8")) as Dashboard;
    const datasources = await readFile(path.join(obsDir, "grafana/provisioning/datasources/prometheus.yml"), "utf8");
    const uid = /uid: (\S+)/.exec(datasources)?.[1];
    expect(uid).toBeDefined();
    expect(dashboard.uid).toBe("fleet-overview");
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboard.panels) {
      expect(panel.datasource.uid, panel.title).toBe(uid);
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      for (const t of panel.targets) {
        expect(t.expr, panel.title).toMatch(/fleet_/);
        expect(t.datasource.uid, panel.title).toBe(uid);
      }
    }
    expect(dashboard.panels.map((p) => p.title)).toEqual(
      expect.arrayContaining(["Fleet", "Queue depth", "Queue wait", "Per-stage job time (p95)", "Generation vs wall time per GPU class (p50)"]),
    );
  });

  it("every alert has a runbook line in the README", async () => {
    const alerts = await readFile(path.join(obsDir, "alerts.yml"), "utf8");
    const readme = await readFile(path.join(obsDir, "README.md"), "utf8");
    const names = [...alerts.matchAll(/- alert: (\w+)/g)].map((m) => m[1] ?? "");
    expect(names.length).toBeGreaterThanOrEqual(11);
    for (const name of names) expect(readme, name).toMatch(new RegExp(`\\| \`${name}\` \\|`));
  });
});
