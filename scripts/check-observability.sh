#!/usr/bin/env bash
# Checks docker/observability with the real tools: promtool on the rules, their unit tests and the
# scrape config, then a real Prometheus against a running orchestrator and worker
# (apps/worker/src/e2e/prometheus-alerts.observability.ts). Needs Debian's `prometheus` package
# (promtool + prometheus; PROMETHEUS_BIN/PROMTOOL override the paths); CI installs it. Not part
# of `./fleetw test`, which must pass on a machine with only Node and npm.
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
obs="$root/docker/observability"
promtool="${PROMTOOL:-$(command -v promtool || true)}"
[ -x "$promtool" ] || { echo "check-observability: promtool not found (apt-get install prometheus)" >&2; exit 1; }

"$promtool" check rules "$obs/alerts.yml"
(cd "$obs" && "$promtool" test rules alerts.test.yml)

# The config names the rule and target files by their paths inside the container: check it
# against a copy whose paths point at the repository.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
sed -e "s|/etc/prometheus/alerts.yml|$obs/alerts.yml|" -e "s|/etc/prometheus/workers.yml|$obs/workers.example.yml|" \
  "$obs/prometheus.yml" > "$tmp/prometheus.yml"
"$promtool" check config "$tmp/prometheus.yml"

cd "$root/apps/worker"
"$root/fleetw" pnpm exec vitest run --config vitest.observability.config.ts
echo "check-observability: all passed"
